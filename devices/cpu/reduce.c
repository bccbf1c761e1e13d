/* Reductions of the CPU plugin: Reduce* over a set of axes, ArgMax/ArgMin, Softmax,
 * LogSoftmax, Hardmax and CumSum.
 *
 * Reduce*: after dims of size 1 are dropped and adjacent dims that are both kept or both reduced
 * are merged, the input is a list of alternating kept/reduced groups. When the last group is
 * kept (size I), each output row of I values accumulates whole contiguous rows of the input
 * (vectorised across I, in blocks of RED_IB); when the last group is reduced, each output value
 * accumulates contiguous segments. Other groups are walked with an odometer. The single-axis
 * operators see the input as [outer, axis, inner] and use the same two cases.
 *
 * Dtypes: each kernel comes in a few canonical types (float32, float64, int64, uint64); other
 * dtypes are converted into one of them first (float16 to float32, narrow integers to 64 bits)
 * and the result converted back. float32 sums accumulate in float64. */
/* GCC at -O2 vectorises only loops whose trip count is a known multiple of the vector width
 * (its "very-cheap" cost model), and with -ftrapping-math it will not if-convert a select whose
 * arms do float arithmetic (x < 0 ? alpha * x : x); both leave these loops scalar. The kernels
 * never read the floating-point exception flags, so they opt out for this file. Clang does both
 * by default. fp-contract lets the AVX2+FMA variant fuse multiply-adds (ISO C mode turns that
 * off; SSE2 code has no FMA, so it changes nothing there). Placed before the includes so that the
 * inline helpers get the same options and can be inlined. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic", "fp-contract=fast")
#endif

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/elementwise_util.h"
#include "devices/cpu/nchwc.h"
#include "devices/cpu/vmath_avx2.h"

#define RED_MAX_GROUPS 32           /* alternating kept/reduced groups; a clean error beyond */
#define RED_IB 256                  /* inner elements accumulated together, on the stack */
#define RED_GRAIN ((size_t)1 << 15) /* input elements worth a task */

typedef enum red_op {
  RED_SUM,
  RED_MEAN,
  RED_MAX,
  RED_MIN,
  RED_PROD,
  RED_L1,
  RED_L2,
  RED_LOGSUM,
  RED_LOGSUMEXP,
  RED_SUMSQ
} red_op;

/* ---- arithmetic by canonical type: integers wrap instead of overflowing ------------------- */

static inline float r_add_f32(float a, float b) { return a + b; }
static inline double r_add_f64(double a, double b) { return a + b; }
static inline int64_t r_add_i64(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline uint64_t r_add_u64(uint64_t a, uint64_t b) { return a + b; }
static inline double r_mul_f64(double a, double b) { return a * b; }
static inline int64_t r_mul_i64(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a * (uint64_t)b);
}
static inline uint64_t r_mul_u64(uint64_t a, uint64_t b) { return a * b; }
static inline double r_abs_f64(double a) { return fabs(a); }
static inline int64_t r_abs_i64(int64_t a) { return a < 0 ? (int64_t)(0 - (uint64_t)a) : a; }
static inline uint64_t r_abs_u64(uint64_t a) { return a; }
/* Max/Min propagate NaN (numpy.maximum.reduce); integers compare plainly. A bitwise | keeps
 * them branch-free, so loops over them vectorise. */
static inline double r_max_f64(double acc, double x) { return ((x > acc) | (x != x)) ? x : acc; }
static inline double r_min_f64(double acc, double x) { return ((x < acc) | (x != x)) ? x : acc; }
static inline int64_t r_max_i64(int64_t acc, int64_t x) { return x > acc ? x : acc; }
static inline int64_t r_min_i64(int64_t acc, int64_t x) { return x < acc ? x : acc; }
static inline uint64_t r_max_u64(uint64_t acc, uint64_t x) { return x > acc ? x : acc; }
static inline uint64_t r_min_u64(uint64_t acc, uint64_t x) { return x < acc ? x : acc; }
static inline double r_lowest_f64(void) { return -INFINITY; }
static inline double r_highest_f64(void) { return INFINITY; }
static inline int64_t r_lowest_i64(void) { return INT64_MIN; }
static inline int64_t r_highest_i64(void) { return INT64_MAX; }
static inline uint64_t r_lowest_u64(void) { return 0; }
static inline uint64_t r_highest_u64(void) { return UINT64_MAX; }
static inline int64_t r_div_i64(int64_t a, size_t n) { return n ? a / (int64_t)n : 0; }
static inline uint64_t r_div_u64(uint64_t a, size_t n) { return n ? a / n : 0; }

/* ---- geometry of a reduction ------------------------------------------------------------- */

typedef struct red_geom {
  bool last_kept;
  size_t inner;     /* size of the last group when kept, else 1 */
  size_t seg;       /* contiguous elements read at a time: inner, or the last reduced group */
  size_t out_rows;  /* output values / inner */
  size_t n_red;     /* reduced positions walked by the odometer (segments per output row) */
  size_t red_count; /* all reduced elements per output value, for Mean */
  size_t nk, nr;    /* groups of the row decomposition and of the odometer */
  size_t ksize[RED_MAX_GROUPS], kstride[RED_MAX_GROUPS];
  size_t rsize[RED_MAX_GROUPS], rstride[RED_MAX_GROUPS];
} red_geom;

/* Builds the geometry of reducing the dims flagged in `red` of an input of shape dims. */
static bool red_geom_init(red_geom *g, uint32_t rank, const int64_t *dims, const bool *red) {
  size_t size[RED_MAX_GROUPS], stride[RED_MAX_GROUPS];
  bool gred[RED_MAX_GROUPS];
  size_t m = 0, st = 1;
  /* Groups from the innermost out, merging neighbours of the same kind. */
  for (uint32_t d = rank; d-- > 0;) {
    size_t n = (size_t)dims[d];
    if (n == 1)
      continue;
    if (m > 0 && gred[m - 1] == red[d]) {
      size[m - 1] *= n;
    } else {
      if (m == RED_MAX_GROUPS)
        return false;
      size[m] = n;
      stride[m] = st;
      gred[m] = red[d];
      m++;
    }
    st *= n;
  }
  memset(g, 0, sizeof *g);
  g->red_count = 1;
  for (size_t i = 0; i < m; i++)
    if (gred[i])
      g->red_count *= size[i];
  /* Group 0 is the innermost. */
  g->last_kept = m == 0 || !gred[0];
  g->inner = g->last_kept && m > 0 ? size[0] : 1;
  g->seg = m > 0 ? size[0] : 1;
  size_t first = m > 0 ? 1 : 0; /* the innermost group is read contiguously */
  size_t out_values = 1;
  g->n_red = 1;
  for (size_t i = m; i-- > first;) {
    if (gred[i]) {
      g->rsize[g->nr] = size[i];
      g->rstride[g->nr] = stride[i];
      g->nr++;
      g->n_red *= size[i];
    } else {
      g->ksize[g->nk] = size[i];
      g->kstride[g->nk] = stride[i];
      g->nk++;
      out_values *= size[i];
    }
  }
  g->out_rows = out_values;
  return true;
}

/* Input offset of output row `row` (decomposed over the kept groups, outermost first). */
static size_t red_row_offset(const red_geom *g, size_t row) {
  size_t off = 0;
  for (size_t i = g->nk; i-- > 0;) {
    off += (row % g->ksize[i]) * g->kstride[i];
    row /= g->ksize[i];
  }
  return off;
}

/* Walks the odometer of reduced groups: the offset of the next position. */
typedef struct red_odo {
  size_t idx[RED_MAX_GROUPS];
  size_t off;
} red_odo;

static inline void red_odo_next(red_odo *o, const red_geom *g) {
  for (size_t d = g->nr; d-- > 0;) {
    o->idx[d]++;
    o->off += g->rstride[d];
    if (o->idx[d] < g->rsize[d])
      return;
    o->off -= g->rsize[d] * g->rstride[d];
    o->idx[d] = 0;
  }
}

typedef struct red_job {
  const red_geom *g;
  red_op op;
  const void *x;
  void *y;
  size_t iblocks; /* blocks of RED_IB per output row when the last group is kept */
} red_job;

/* The kernels of one canonical type T accumulating in A (suffix AS): initial value, the
 * contribution of one element, combining, and the final value. Contiguous segments use L
 * lanes; ATTR goes on the outer functions (a target attribute for an ISA twin). */
#define RED_IMPL(sfx, T, A, AS, L, ATTR)                                                           \
  static inline A red_init_##sfx(red_op op) {                                                      \
    switch (op) {                                                                                  \
    case RED_PROD: return (A)1;                                                                    \
    case RED_MAX: return r_lowest_##AS();                                                          \
    case RED_MIN: return r_highest_##AS();                                                         \
    default: return (A)0;                                                                          \
    }                                                                                              \
  }                                                                                                \
  static inline A red_combine_##sfx(red_op op, A acc, A v) {                                       \
    switch (op) {                                                                                  \
    case RED_PROD: return r_mul_##AS(acc, v);                                                      \
    case RED_MAX: return r_max_##AS(acc, v);                                                       \
    case RED_MIN: return r_min_##AS(acc, v);                                                       \
    default: return r_add_##AS(acc, v);                                                            \
    }                                                                                              \
  }                                                                                                \
  /* Reduces n contiguous elements (LogSumExp not included) into a partial value, in L lanes       \
   * that the compiler vectorises (and that make float sums more accurate). */                     \
  ATTR static A red_seg_##sfx(red_op op, const T *x, size_t n) {                                   \
    A s[L];                                                                                        \
    for (size_t j = 0; j < L; j++)                                                                 \
      s[j] = red_init_##sfx(op);                                                                   \
    size_t i = 0;                                                                                  \
    switch (op) {                                                                                  \
    case RED_PROD:                                                                                 \
      for (; i + L <= n; i += L)                                                                   \
        for (size_t j = 0; j < L; j++)                                                             \
          s[j] = r_mul_##AS(s[j], (A)x[i + j]);                                                    \
      for (; i < n; i++)                                                                           \
        s[0] = r_mul_##AS(s[0], (A)x[i]);                                                          \
      break;                                                                                       \
    case RED_MAX:                                                                                  \
      for (; i + L <= n; i += L)                                                                   \
        for (size_t j = 0; j < L; j++)                                                             \
          s[j] = r_max_##AS(s[j], (A)x[i + j]);                                                    \
      for (; i < n; i++)                                                                           \
        s[0] = r_max_##AS(s[0], (A)x[i]);                                                          \
      break;                                                                                       \
    case RED_MIN:                                                                                  \
      for (; i + L <= n; i += L)                                                                   \
        for (size_t j = 0; j < L; j++)                                                             \
          s[j] = r_min_##AS(s[j], (A)x[i + j]);                                                    \
      for (; i < n; i++)                                                                           \
        s[0] = r_min_##AS(s[0], (A)x[i]);                                                          \
      break;                                                                                       \
    case RED_L1:                                                                                   \
      for (; i + L <= n; i += L)                                                                   \
        for (size_t j = 0; j < L; j++)                                                             \
          s[j] = r_add_##AS(s[j], r_abs_##AS((A)x[i + j]));                                        \
      for (; i < n; i++)                                                                           \
        s[0] = r_add_##AS(s[0], r_abs_##AS((A)x[i]));                                              \
      break;                                                                                       \
    case RED_L2:                                                                                   \
    case RED_SUMSQ:                                                                                \
      for (; i + L <= n; i += L)                                                                   \
        for (size_t j = 0; j < L; j++)                                                             \
          s[j] = r_add_##AS(s[j], r_mul_##AS((A)x[i + j], (A)x[i + j]));                           \
      for (; i < n; i++)                                                                           \
        s[0] = r_add_##AS(s[0], r_mul_##AS((A)x[i], (A)x[i]));                                     \
      break;                                                                                       \
    default:                                                                                       \
      for (; i + L <= n; i += L)                                                                   \
        for (size_t j = 0; j < L; j++)                                                             \
          s[j] = r_add_##AS(s[j], (A)x[i + j]);                                                    \
      for (; i < n; i++)                                                                           \
        s[0] = r_add_##AS(s[0], (A)x[i]);                                                          \
      break;                                                                                       \
    }                                                                                              \
    for (size_t w = L / 2; w > 0; w /= 2)                                                          \
      for (size_t j = 0; j < w; j++)                                                               \
        s[j] = red_combine_##sfx(op, s[j], s[j + w]);                                              \
    return s[0];                                                                                   \
  }                                                                                                \
  /* acc[i] = combine(acc[i], contribution of x[i]) for i < n. */                                  \
  ATTR static void red_rows_##sfx(red_op op, const T *x, size_t n, A *acc) {                       \
    switch (op) {                                                                                  \
    case RED_PROD:                                                                                 \
      for (size_t i = 0; i < n; i++)                                                               \
        acc[i] = r_mul_##AS(acc[i], (A)x[i]);                                                      \
      break;                                                                                       \
    case RED_MAX:                                                                                  \
      for (size_t i = 0; i < n; i++)                                                               \
        acc[i] = r_max_##AS(acc[i], (A)x[i]);                                                      \
      break;                                                                                       \
    case RED_MIN:                                                                                  \
      for (size_t i = 0; i < n; i++)                                                               \
        acc[i] = r_min_##AS(acc[i], (A)x[i]);                                                      \
      break;                                                                                       \
    case RED_L1:                                                                                   \
      for (size_t i = 0; i < n; i++)                                                               \
        acc[i] = r_add_##AS(acc[i], r_abs_##AS((A)x[i]));                                          \
      break;                                                                                       \
    case RED_L2:                                                                                   \
    case RED_SUMSQ:                                                                                \
      for (size_t i = 0; i < n; i++)                                                               \
        acc[i] = r_add_##AS(acc[i], r_mul_##AS((A)x[i], (A)x[i]));                                 \
      break;                                                                                       \
    default:                                                                                       \
      for (size_t i = 0; i < n; i++)                                                               \
        acc[i] = r_add_##AS(acc[i], (A)x[i]);                                                      \
      break;                                                                                       \
    }                                                                                              \
  }                                                                                                \
  ATTR static void red_range_##sfx(void *arg, size_t begin, size_t end) {                          \
    const red_job *j = arg;                                                                        \
    const red_geom *g = j->g;                                                                      \
    const T *x = j->x;                                                                             \
    T *y = j->y;                                                                                   \
    const red_op op = j->op;                                                                       \
    for (size_t it = begin; it < end; it++) {                                                      \
      red_odo odo;                                                                                 \
      memset(&odo, 0, sizeof odo);                                                                 \
      if (g->last_kept) {                                                                          \
        size_t row = it / j->iblocks, i0 = (it % j->iblocks) * RED_IB;                             \
        size_t bl = g->inner - i0 < RED_IB ? g->inner - i0 : RED_IB;                               \
        const T *xb = x + red_row_offset(g, row) + i0;                                             \
        A acc[RED_IB];                                                                             \
        for (size_t i = 0; i < bl; i++)                                                            \
          acc[i] = red_init_##sfx(op);                                                             \
        for (size_t r = 0; r < g->n_red; r++, red_odo_next(&odo, g))                               \
          red_rows_##sfx(op, xb + odo.off, bl, acc);                                               \
        T *yb = y + row * g->inner + i0;                                                           \
        for (size_t i = 0; i < bl; i++)                                                            \
          yb[i] = red_final_##sfx(op, acc[i], g->red_count);                                       \
      } else {                                                                                     \
        const T *xb = x + red_row_offset(g, it);                                                   \
        A acc = red_init_##sfx(op);                                                                \
        for (size_t r = 0; r < g->n_red; r++, red_odo_next(&odo, g))                               \
          acc = red_combine_##sfx(op, acc, red_seg_##sfx(op, xb + odo.off, g->seg));               \
        y[it] = red_final_##sfx(op, acc, g->red_count);                                            \
      }                                                                                            \
    }                                                                                              \
  }

/* Final values: float types finish L2, LogSum and Mean; integers only reach Mean that way
 * (their L2/LogSum/LogSumExp are computed in float64). */
static inline float red_final_f32(red_op op, double acc, size_t n) {
  switch (op) {
  case RED_MEAN: return (float)(acc / (double)n);
  case RED_L2: return (float)sqrt(acc);
  case RED_LOGSUM: return (float)log(acc);
  default: return (float)acc;
  }
}
static inline double red_final_f64(red_op op, double acc, size_t n) {
  switch (op) {
  case RED_MEAN: return acc / (double)n;
  case RED_L2: return sqrt(acc);
  case RED_LOGSUM: return log(acc);
  default: return acc;
  }
}
static inline int64_t red_final_i64(red_op op, int64_t acc, size_t n) {
  return op == RED_MEAN ? r_div_i64(acc, n) : acc;
}
static inline uint64_t red_final_u64(red_op op, uint64_t acc, size_t n) {
  return op == RED_MEAN ? r_div_u64(acc, n) : acc;
}

/* Four lanes suit SSE2 code (2 doubles a register); the AVX2 twin takes eight. */
RED_IMPL(f32, float, double, f64, 4, )
RED_IMPL(f64, double, double, f64, 4, )
RED_IMPL(i64, int64_t, int64_t, i64, 4, )
RED_IMPL(u64, uint64_t, uint64_t, u64, 4, )
#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
static inline float red_final_f32_avx2(red_op op, double acc, size_t n) {
  return red_final_f32(op, acc, n);
}
RED_IMPL(f32_avx2, float, double, f64, 8, __attribute__((target("avx2,fma"))))
static void (*const red_f32_avx2)(void *, size_t, size_t) = red_range_f32_avx2;
#else
static void (*const red_f32_avx2)(void *, size_t, size_t) = NULL;
#endif

/* LogSumExp, float types: max first, then the sum of exp(x - max), both per output value. */
#define RED_LSE_IMPL(sfx, T)                                                                       \
  static void red_lse_range_##sfx(void *arg, size_t begin, size_t end) {                           \
    const red_job *j = arg;                                                                        \
    const red_geom *g = j->g;                                                                      \
    const T *x = j->x;                                                                             \
    T *y = j->y;                                                                                   \
    for (size_t it = begin; it < end; it++) {                                                      \
      red_odo odo;                                                                                 \
      if (g->last_kept) {                                                                          \
        size_t row = it / j->iblocks, i0 = (it % j->iblocks) * RED_IB;                             \
        size_t bl = g->inner - i0 < RED_IB ? g->inner - i0 : RED_IB;                               \
        const T *xb = x + red_row_offset(g, row) + i0;                                             \
        double mx[RED_IB], s[RED_IB];                                                              \
        for (size_t i = 0; i < bl; i++) {                                                          \
          mx[i] = -INFINITY;                                                                       \
          s[i] = 0;                                                                                \
        }                                                                                          \
        memset(&odo, 0, sizeof odo);                                                               \
        for (size_t r = 0; r < g->n_red; r++, red_odo_next(&odo, g))                               \
          for (size_t i = 0; i < bl; i++)                                                          \
            mx[i] = r_max_f64(mx[i], xb[odo.off + i]);                                             \
        memset(&odo, 0, sizeof odo);                                                               \
        for (size_t r = 0; r < g->n_red; r++, red_odo_next(&odo, g))                               \
          for (size_t i = 0; i < bl; i++)                                                          \
            s[i] += exp(xb[odo.off + i] - mx[i]);                                                  \
        T *yb = y + row * g->inner + i0;                                                           \
        for (size_t i = 0; i < bl; i++)                                                            \
          yb[i] = (T)(isinf(mx[i]) ? mx[i] : log(s[i]) + mx[i]);                                   \
      } else {                                                                                     \
        const T *xb = x + red_row_offset(g, it);                                                   \
        double mx = -INFINITY, s = 0;                                                              \
        memset(&odo, 0, sizeof odo);                                                               \
        for (size_t r = 0; r < g->n_red; r++, red_odo_next(&odo, g))                               \
          for (size_t i = 0; i < g->seg; i++)                                                      \
            mx = r_max_f64(mx, xb[odo.off + i]);                                                   \
        memset(&odo, 0, sizeof odo);                                                               \
        for (size_t r = 0; r < g->n_red; r++, red_odo_next(&odo, g))                               \
          for (size_t i = 0; i < g->seg; i++)                                                      \
            s += exp(xb[odo.off + i] - mx);                                                        \
        y[it] = (T)(isinf(mx) ? mx : log(s) + mx);                                                 \
      }                                                                                            \
    }                                                                                              \
  }
RED_LSE_IMPL(f32, float)
RED_LSE_IMPL(f64, double)

/* ---- canonical types --------------------------------------------------------------------- */

/* The dtype a kernel computes a dtype in: float16 -> float32, narrow integers -> 64 bits.
 * float_only routes integers through float64 (L2, LogSum, LogSumExp, Softmax). */
static uint32_t red_canonical(uint32_t dt, bool float_only) {
  if (dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT16)
    return TSR_DTYPE_FLOAT32;
  if (dt == TSR_DTYPE_FLOAT64)
    return TSR_DTYPE_FLOAT64;
  if (float_only && (cpu_ew_is_signed_int(dt) || cpu_ew_is_unsigned_int(dt)))
    return TSR_DTYPE_FLOAT64;
  if (cpu_ew_is_signed_int(dt))
    return TSR_DTYPE_INT64;
  if (cpu_ew_is_unsigned_int(dt))
    return TSR_DTYPE_UINT64;
  return TSR_DTYPE_UNDEFINED;
}

/* Buffers in the canonical dtype: the tensors' own memory when they already are, else
 * converted copies (out may be NULL: no output buffer). red_bufs_finish converts the output
 * back and frees the copies. */
typedef struct red_bufs {
  uint32_t cdt;
  const void *x;
  void *y;
  void *x_owned, *y_owned;
} red_bufs;

static int red_bufs_init(cpu_ctx *ctx, red_bufs *b, uint32_t cdt, const cpu_tensor *in,
                         cpu_tensor *out) {
  memset(b, 0, sizeof *b);
  b->cdt = cdt;
  size_t cs = cpu_dtype_size(cdt);
  if (in->dtype == cdt) {
    b->x = in->data;
  } else if (in->count) {
    b->x_owned = malloc(in->count * cs);
    if (!b->x_owned)
      return cpu_fail(ctx, "out of memory for %zu elements", in->count);
    cpu_ew_convert(in->dtype, in->data, cdt, b->x_owned, in->count);
    b->x = b->x_owned;
  }
  if (!out)
    return 0;
  if (out->dtype == cdt) {
    b->y = out->data;
  } else if (out->count) {
    b->y_owned = malloc(out->count * cs);
    if (!b->y_owned) {
      free(b->x_owned);
      b->x_owned = NULL;
      return cpu_fail(ctx, "out of memory for %zu elements", out->count);
    }
    b->y = b->y_owned;
  }
  return 0;
}

static void red_bufs_finish(red_bufs *b, cpu_tensor *out) {
  if (b->y_owned && out)
    cpu_ew_convert(b->cdt, b->y_owned, out->dtype, out->data, out->count);
  free(b->x_owned);
  free(b->y_owned);
  b->x_owned = b->y_owned = NULL;
}

static bool red_dims_valid(const cpu_tensor *t) {
  size_t c = 1;
  for (uint32_t i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0)
      return false;
    c *= (size_t)t->dims[i];
  }
  return c == t->count && (c == 0 || t->data);
}

/* ---- Reduce* ------------------------------------------------------------------------------ */

typedef struct red_name {
  const char *op;
  red_op red;
} red_name;

static const red_name red_names[] = {
    {"ReduceSum", RED_SUM},
    {"ReduceMean", RED_MEAN},
    {"ReduceMax", RED_MAX},
    {"ReduceMin", RED_MIN},
    {"ReduceProd", RED_PROD},
    {"ReduceL1", RED_L1},
    {"ReduceL2", RED_L2},
    {"ReduceLogSum", RED_LOGSUM},
    {"ReduceLogSumExp", RED_LOGSUMEXP},
    {"ReduceSumSquare", RED_SUMSQ},
};

static bool red_op_of(const char *name, red_op *op) {
  for (size_t i = 0; i < sizeof red_names / sizeof red_names[0]; i++)
    if (!strcmp(red_names[i].op, name)) {
      *op = red_names[i].red;
      return true;
    }
  return false;
}

static bool red_axes_from_input(const cpu_node *n) {
  return !strcmp(n->op_type, "ReduceSum") && n->opset >= 13;
}

/* Integer dtypes compute L2, LogSum and LogSumExp in float64. */
static bool red_float_only(red_op op) {
  return op == RED_L2 || op == RED_LOGSUM || op == RED_LOGSUMEXP;
}

/* Which dims of `in` the node reduces. `axes_t` is the axes input (may lack data at check
 * time; then *known is false). Returns 0, or a reason with a message. */
static tsr_plugin_reason red_axes(const cpu_node *n, const cpu_tensor *in, uint32_t n_in, bool *red,
                                  bool *noop, bool *known, char *msg, size_t size) {
  uint32_t rank = in[0].rank;
  const int64_t *attr = NULL;
  size_t count = 0;
  const cpu_tensor *t = NULL;
  *known = true;
  *noop = false;
  if (red_axes_from_input(n)) {
    if (n_in >= 2 && in[1].present) {
      t = &in[1];
      if (t->dtype != TSR_DTYPE_INT64)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "axes must be int64, not %s",
                          cpu_dtype_name(t->dtype));
      if (t->rank > 1)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "axes must be 1-D");
      count = t->rank == 0 ? 1 : (size_t)t->dims[0];
      if (count && !t->data) {
        *known = false;
        return TSR_PLUGIN_REASON_NONE;
      }
    }
  } else {
    count = cpu_attr_ints(n, "axes", &attr);
  }
  int64_t noop_attr = red_axes_from_input(n) ? cpu_attr_int(n, "noop_with_empty_axes", 0) : 0;
  for (uint32_t d = 0; d < rank; d++)
    red[d] = count == 0;
  if (count == 0) {
    *noop = noop_attr != 0;
    return TSR_PLUGIN_REASON_NONE;
  }
  if (t && t->count != count)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "axes holds %zu values, shape says %zu",
                      t->count, count);
  for (size_t i = 0; i < count; i++) {
    int64_t a = t ? ((const int64_t *)t->data)[i] : attr[i];
    uint32_t ax;
    if (!cpu_ew_axis(a, rank, &ax))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "axis %lld out of range for rank %u", (long long)a, rank);
    if (red[ax])
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld repeated", (long long)a);
    red[ax] = true;
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* Checks the output shape against the input's with dims `red` reduced. */
static bool red_out_shape_ok(const cpu_tensor *in, const bool *red, bool keepdims,
                             const cpu_tensor *out) {
  uint32_t r = 0;
  for (uint32_t d = 0; d < in->rank; d++) {
    if (red[d] && !keepdims)
      continue;
    if (r >= out->rank || out->dims[r] != (red[d] ? 1 : in->dims[d]))
      return false;
    r++;
  }
  return r == out->rank;
}

static tsr_plugin_reason check_reduce(const cpu_node *n, char *msg, size_t size) {
  red_op op;
  if (!red_op_of(n->op_type, &op))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OP, "unknown");
  if (n->n_in < 1 || !n->in[0].present || n->n_out < 1 || !n->out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OP, "needs an input and an output");
  uint32_t dt = n->in[0].dtype;
  if (red_canonical(dt, red_float_only(op)) == TSR_DTYPE_UNDEFINED)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  if (n->out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, input %s",
                      cpu_dtype_name(n->out[0].dtype), cpu_dtype_name(dt));
  bool *red = calloc(n->in[0].rank + 1, sizeof *red);
  if (!red)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "out of memory");
  bool noop, known;
  tsr_plugin_reason r = red_axes(n, n->in, n->n_in, red, &noop, &known, msg, size);
  if (!r && known) {
    bool keep = cpu_attr_int(n, "keepdims", 1) != 0;
    bool ok = noop ? cpu_ew_same_shape(n->in[0].rank, n->in[0].dims, n->out[0].rank, n->out[0].dims)
                   : red_out_shape_ok(&n->in[0], red, keep, &n->out[0]);
    if (!ok)
      r = cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
  }
  free(red);
  return r;
}

/* The value of reducing nothing, in the canonical dtype cdt. */
static void red_empty_value(red_op op, uint32_t cdt, void *v) {
  switch (cdt) {
  case TSR_DTYPE_FLOAT32:
    *(float *)v = op == RED_LOGSUMEXP ? -INFINITY : red_final_f32(op, red_init_f32(op), 0);
    break;
  case TSR_DTYPE_FLOAT64:
    *(double *)v = op == RED_LOGSUMEXP ? -INFINITY : red_final_f64(op, red_init_f64(op), 0);
    break;
  case TSR_DTYPE_INT64: *(int64_t *)v = red_final_i64(op, red_init_i64(op), 0); break;
  case TSR_DTYPE_UINT64: *(uint64_t *)v = red_final_u64(op, red_init_u64(op), 0); break;
  default: break;
  }
}

/* ReduceMean over H and W of a float32 [N, C, H, W] with C a multiple of eight reads a blocked
 * input as GlobalAveragePool does (MNASNet ends so). */
static cpu_nchwc_role reduce_nchwc_role(const cpu_node *n, cpu_isa isa) {
#ifdef CPU_NCHWC_HAVE_AVX2
  const cpu_tensor *x = &n->in[0];
  if (isa != CPU_ISA_AVX2_FMA || n->n_in < 1 ||
      n->n_out != 1 || x->dtype != TSR_DTYPE_FLOAT32 || x->rank != 4 || x->dims[1] % 8 != 0 ||
      n->out[0].count != (size_t)(x->dims[0] * x->dims[1]))
    return CPU_NCHWC_NONE;
  bool red[4] = {false}, noop = false, known = false;
  char msg[160];
  if (red_axes(n, n->in, n->n_in, red, &noop, &known, msg, sizeof msg) || !known || noop ||
      red[0] || red[1] || !red[2] || !red[3])
    return CPU_NCHWC_NONE;
  return CPU_NCHWC_SINK;
#else
  (void)n, (void)isa;
  return CPU_NCHWC_NONE;
#endif
}

static int run_reduce(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
#ifdef CPU_NCHWC_HAVE_AVX2
  if (n->nchwc) {
    /* plugin.c gave the blocked input after reduce_nchwc_role said yes for these shapes. */
    const cpu_tensor *x = &in[0];
    if (ctx->isa != CPU_ISA_AVX2_FMA || x->rank != 4 || x->dims[1] % 8 != 0 ||
        out[0].count != (size_t)(x->dims[0] * x->dims[1]))
      return cpu_fail(ctx, "blocked input of a shape this reduction cannot read");
    cpu_nchwc_global_mean(ctx, x->data, (size_t)(x->dims[0] * x->dims[1]) / 8,
                          (size_t)(x->dims[2] * x->dims[3]), out[0].data);
    return 0;
  }
#endif
  red_op op;
  if (!red_op_of(n->op_type, &op))
    return cpu_fail(ctx, "unknown reduction");
  if (n->n_in < 1 || !in[0].present || n->n_out < 1 || !out[0].present)
    return cpu_fail(ctx, "needs an input and an output");
  const cpu_tensor *x = &in[0];
  cpu_tensor *y = &out[0];
  uint32_t cdt = red_canonical(x->dtype, red_float_only(op));
  if (cdt == TSR_DTYPE_UNDEFINED || y->dtype != x->dtype)
    return cpu_fail(ctx, "dtypes %s -> %s not supported", cpu_dtype_name(x->dtype),
                    cpu_dtype_name(y->dtype));
  if (!red_dims_valid(x) || !red_dims_valid(y))
    return cpu_fail(ctx, "tensor dims and data disagree");
  bool *red = calloc(x->rank + 1, sizeof *red);
  if (!red)
    return cpu_fail(ctx, "out of memory");
  bool noop, known;
  char msg[160];
  if (red_axes(n, in, n->n_in, red, &noop, &known, msg, sizeof msg) || !known) {
    free(red);
    return cpu_fail(ctx, "%s", known ? msg : "axes has no data");
  }
  bool keep = cpu_attr_int(n, "keepdims", 1) != 0;
  if (noop) {
    free(red);
    if (!cpu_ew_same_shape(x->rank, x->dims, y->rank, y->dims))
      return cpu_fail(ctx, "output shape differs from the input's (noop_with_empty_axes)");
    if (x->nbytes && y->data != x->data)
      memmove(y->data, x->data, x->nbytes);
    return 0;
  }
  if (!red_out_shape_ok(x, red, keep, y)) {
    free(red);
    return cpu_fail(ctx, "output shape does not match the reduction of the input");
  }
  red_geom g;
  bool geom_ok = red_geom_init(&g, x->rank, x->dims, red);
  free(red);
  if (!geom_ok)
    return cpu_fail(ctx, "more than %d alternating reduced and kept axes", RED_MAX_GROUPS);
  if (y->count == 0)
    return 0;
  red_bufs b;
  if (red_bufs_init(ctx, &b, cdt, x, y))
    return -1;
  size_t cs = cpu_dtype_size(cdt);
  if (x->count == 0) {
    char v[8];
    red_empty_value(op, cdt, v);
    for (size_t i = 0; i < y->count; i++)
      memcpy((char *)b.y + i * cs, v, cs);
  } else {
    red_job j = {.g = &g, .op = op, .x = b.x, .y = b.y};
    size_t items, per_item;
    if (g.last_kept) {
      j.iblocks = (g.inner + RED_IB - 1) / RED_IB;
      items = g.out_rows * j.iblocks;
      per_item = g.n_red * (g.inner < RED_IB ? g.inner : RED_IB);
    } else {
      items = g.out_rows;
      per_item = g.n_red * g.seg;
    }
    size_t grain = per_item >= RED_GRAIN ? 1 : RED_GRAIN / (per_item ? per_item : 1);
    void (*fn)(void *, size_t, size_t) = NULL;
    bool lse = op == RED_LOGSUMEXP;
    switch (cdt) {
    case TSR_DTYPE_FLOAT32:
      fn = lse ? red_lse_range_f32 : red_range_f32;
      if (!lse && ctx->isa == CPU_ISA_AVX2_FMA && red_f32_avx2)
        fn = red_f32_avx2;
      break;
    case TSR_DTYPE_FLOAT64: fn = lse ? red_lse_range_f64 : red_range_f64; break;
    case TSR_DTYPE_INT64: fn = red_range_i64; break;
    default: fn = red_range_u64; break;
    }
    cpu_parallel_for(ctx, items, grain, fn, &j);
  }
  red_bufs_finish(&b, y);
  return 0;
}

/* ---- [outer, axis, inner] view for the single-axis operators ------------------------------ */

typedef struct axis_view {
  size_t outer, len, inner;
} axis_view;

static axis_view axis_view_of(const cpu_tensor *t, uint32_t axis) {
  axis_view v = {1, 1, 1};
  for (uint32_t d = 0; d < t->rank; d++) {
    size_t n = (size_t)t->dims[d];
    if (d < axis)
      v.outer *= n;
    else if (d == axis)
      v.len = n;
    else
      v.inner *= n;
  }
  return v;
}

/* Splits work into items: whole rows when inner == 1, else (outer, block of RED_IB inner). */
typedef struct axis_job {
  axis_view v;
  size_t iblocks;
  const void *x;
  void *y;
  int mode; /* op-specific: max/min, softmax/logsoftmax/hardmax */
  bool last, exclusive, reverse;
} axis_job;

static size_t axis_items(axis_job *j) {
  j->iblocks = j->v.inner == 1 ? 1 : (j->v.inner + RED_IB - 1) / RED_IB;
  return j->v.outer * j->iblocks;
}

static size_t axis_grain(const axis_job *j) {
  size_t per = j->v.len * (j->v.inner < RED_IB ? j->v.inner : RED_IB);
  return per >= RED_GRAIN ? 1 : RED_GRAIN / (per ? per : 1);
}

/* ---- ArgMax / ArgMin --------------------------------------------------------------------- */

/* Whether x replaces best. Floats follow numpy: the first NaN wins (the last one with
 * select_last_index). mx and last are constants where this is inlined. */
static inline bool arg_isnan_f32(float x) { return x != x; }
static inline bool arg_isnan_f64(double x) { return x != x; }
static inline bool arg_isnan_i64(int64_t x) {
  (void)x;
  return false;
}
static inline bool arg_isnan_u64(uint64_t x) {
  (void)x;
  return false;
}
#define ARG_BETTER(sfx, x, best, mx, last)                                                         \
  (arg_isnan_##sfx(x) ? ((last) || !arg_isnan_##sfx(best))                                         \
   : (mx)             ? ((last) ? (x) >= (best) : (x) > (best))                                    \
                      : ((last) ? (x) <= (best) : (x) < (best)))
static inline bool arg_better_f32(float x, float best, bool mx, bool last) {
  return ARG_BETTER(f32, x, best, mx, last);
}
static inline bool arg_better_f64(double x, double best, bool mx, bool last) {
  return ARG_BETTER(f64, x, best, mx, last);
}

/* ArgMax/ArgMin. A contiguous row takes two vectorised passes: the extreme value (NaN noted
 * apart), then the first (or last) index holding it. Along a strided axis, blocks of inner
 * elements keep their best value and index, updated with selects. */
#define ARG_IMPL(sfx, T)                                                                           \
  static int64_t arg_row_##sfx(const T *x, size_t len, bool mx, bool last) {                       \
    T v[8];                                                                                        \
    int nan[8] = {0};                                                                              \
    for (size_t k = 0; k < 8; k++)                                                                 \
      v[k] = x[0];                                                                                 \
    size_t r = 0;                                                                                  \
    if (mx) {                                                                                      \
      for (; r + 8 <= len; r += 8)                                                                 \
        for (size_t k = 0; k < 8; k++) {                                                           \
          v[k] = x[r + k] > v[k] ? x[r + k] : v[k];                                                \
          nan[k] |= arg_isnan_##sfx(x[r + k]);                                                     \
        }                                                                                          \
    } else {                                                                                       \
      for (; r + 8 <= len; r += 8)                                                                 \
        for (size_t k = 0; k < 8; k++) {                                                           \
          v[k] = x[r + k] < v[k] ? x[r + k] : v[k];                                                \
          nan[k] |= arg_isnan_##sfx(x[r + k]);                                                     \
        }                                                                                          \
    }                                                                                              \
    for (; r < len; r++) {                                                                         \
      v[0] = (mx ? x[r] > v[0] : x[r] < v[0]) ? x[r] : v[0];                                       \
      nan[0] |= arg_isnan_##sfx(x[r]);                                                             \
    }                                                                                              \
    T best = v[0];                                                                                 \
    int any_nan = nan[0] | arg_isnan_##sfx(x[0]);                                                  \
    for (size_t k = 1; k < 8; k++) {                                                               \
      best = (mx ? v[k] > best : v[k] < best) ? v[k] : best;                                       \
      any_nan |= nan[k];                                                                           \
    }                                                                                              \
    if (last) {                                                                                    \
      for (size_t i = len; i-- > 0;)                                                               \
        if (any_nan ? arg_isnan_##sfx(x[i]) : x[i] == best)                                        \
          return (int64_t)i;                                                                       \
    } else {                                                                                       \
      for (size_t i = 0; i < len; i++)                                                             \
        if (any_nan ? arg_isnan_##sfx(x[i]) : x[i] == best)                                        \
          return (int64_t)i;                                                                       \
    }                                                                                              \
    return 0;                                                                                      \
  }                                                                                                \
  /* One step along a strided axis for the (mx, last) pair MX, LAST, folded as constants. */       \
  static inline void arg_step_##sfx(const T *xr, T *best, int64_t *yb, size_t bl, int64_t r,       \
                                    bool mx, bool last) {                                          \
    for (size_t i = 0; i < bl; i++) {                                                              \
      bool b = ARG_BETTER(sfx, xr[i], best[i], mx, last);                                          \
      best[i] = b ? xr[i] : best[i];                                                               \
      yb[i] = b ? r : yb[i];                                                                       \
    }                                                                                              \
  }                                                                                                \
  static void arg_range_##sfx(void *arg, size_t begin, size_t end) {                               \
    const axis_job *j = arg;                                                                       \
    const T *x = j->x;                                                                             \
    int64_t *y = j->y;                                                                             \
    const size_t len = j->v.len, inner = j->v.inner;                                               \
    const bool mx = j->mode != 0, last = j->last;                                                  \
    for (size_t it = begin; it < end; it++) {                                                      \
      size_t o = it / j->iblocks, i0 = (it % j->iblocks) * RED_IB;                                 \
      const T *xb = x + o * len * inner + i0;                                                      \
      if (inner == 1) {                                                                            \
        y[o] = arg_row_##sfx(xb, len, mx, last);                                                   \
        continue;                                                                                  \
      }                                                                                            \
      size_t bl = inner - i0 < RED_IB ? inner - i0 : RED_IB;                                       \
      T best[RED_IB];                                                                              \
      int64_t *yb = y + o * inner + i0;                                                            \
      for (size_t i = 0; i < bl; i++) {                                                            \
        best[i] = xb[i];                                                                           \
        yb[i] = 0;                                                                                 \
      }                                                                                            \
      for (size_t r = 1; r < len; r++) {                                                           \
        const T *xr = xb + r * inner;                                                              \
        if (mx && last)                                                                            \
          arg_step_##sfx(xr, best, yb, bl, (int64_t)r, true, true);                                \
        else if (mx)                                                                               \
          arg_step_##sfx(xr, best, yb, bl, (int64_t)r, true, false);                               \
        else if (last)                                                                             \
          arg_step_##sfx(xr, best, yb, bl, (int64_t)r, false, true);                               \
        else                                                                                       \
          arg_step_##sfx(xr, best, yb, bl, (int64_t)r, false, false);                              \
      }                                                                                            \
    }                                                                                              \
  }
ARG_IMPL(f32, float)
ARG_IMPL(f64, double)
ARG_IMPL(i64, int64_t)
ARG_IMPL(u64, uint64_t)

static tsr_plugin_reason arg_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   uint32_t *axis, char *msg, size_t size) {
  if (n->n_in < 1 || !in[0].present || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OP, "needs an input and an output");
  if (red_canonical(in[0].dtype, false) == TSR_DTYPE_UNDEFINED)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(in[0].dtype));
  if (out[0].dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output must be int64");
  int64_t a = cpu_attr_int(n, "axis", 0);
  if (!cpu_ew_axis(a, in[0].rank, axis))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld out of range for rank %u",
                      (long long)a, in[0].rank);
  bool keep = cpu_attr_int(n, "keepdims", 1) != 0;
  uint32_t r = 0;
  size_t out_count = 1;
  for (uint32_t d = 0; d < in[0].rank; d++) {
    if (d == *axis && !keep)
      continue;
    int64_t want = d == *axis ? 1 : in[0].dims[d];
    if (r >= out[0].rank || out[0].dims[r] != want)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
    out_count *= (size_t)want;
    r++;
  }
  if (r != out[0].rank)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
  if (in[0].dims[*axis] == 0 && out_count)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "the axis is empty");
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason check_arg(const cpu_node *n, char *msg, size_t size) {
  uint32_t axis;
  return arg_setup(n, n->in, n->out, &axis, msg, size);
}

static int run_arg(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  uint32_t axis;
  char msg[160];
  if (arg_setup(n, in, out, &axis, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (!red_dims_valid(&in[0]) || !red_dims_valid(&out[0]))
    return cpu_fail(ctx, "tensor dims and data disagree");
  if (out[0].count == 0)
    return 0;
  axis_job j = {.v = axis_view_of(&in[0], axis), .y = out[0].data};
  j.mode = !strcmp(n->op_type, "ArgMax");
  j.last = n->opset >= 12 && cpu_attr_int(n, "select_last_index", 0) != 0;
  uint32_t cdt = red_canonical(in[0].dtype, false);
  red_bufs b;
  /* Only the input is converted; the output is int64 already. */
  if (red_bufs_init(ctx, &b, cdt, &in[0], NULL))
    return -1;
  j.x = b.x;
  void (*fn)(void *, size_t, size_t) = cdt == TSR_DTYPE_FLOAT32   ? arg_range_f32
                                       : cdt == TSR_DTYPE_FLOAT64 ? arg_range_f64
                                       : cdt == TSR_DTYPE_INT64   ? arg_range_i64
                                                                  : arg_range_u64;
  size_t items = axis_items(&j);
  cpu_parallel_for(ctx, items, axis_grain(&j), fn, &j);
  red_bufs_finish(&b, NULL);
  return 0;
}

/* ---- Softmax, LogSoftmax, Hardmax -------------------------------------------------------- */

enum { SMX_SOFTMAX = 0, SMX_LOGSOFTMAX = 1, SMX_HARDMAX = 2 };

static inline float smx_exp_f32(float x) { return cpu_ew_expf(x); }
static inline double smx_exp_f64(double x) { return exp(x); }
static inline float smx_log_f32(float x) { return logf(x); }
static inline double smx_log_f64(double x) { return log(x); }

/* Softmax of one contiguous float32 row through vmath_avx2.h's eight-lane exp: GCC does not
 * vectorise the scalar polynomial of cpu_ew_expf inside the row loops below. Returns false
 * (nothing done) when the build has no AVX2 code; the caller picks it only on AVX2 CPUs. */
#ifdef CPU_VMATH_HAVE_AVX2
/* The exponentials come from the fitted polynomial of the fused activations
 * (cpu_exp_neg8_fitted, within 4.0e-7 relative), not cpu_exp8: x - max <= 0 needs neither its
 * overflow handling nor its split scale, and it is half the operations. Below -87 a term is
 * 0 exactly (a masked score, -inf or -1e9, gives 0); a NaN passes through to the sum. Two
 * accumulators a pass, reduced in registers. Over [4, 128, 128] (BERT's attention), per node:
 * 0.065 -> 0.039 ms on one thread, 0.046 -> 0.025 on two (ONNX Runtime 0.039 and 0.028). */
CPU_VMATH_AVX2 static bool smx_row_fast_f32_avx2(const float *x, float *y, size_t len) {
  if (len < 8)
    return false;
  __m256 m0 = _mm256_loadu_ps(x), m1 = m0;
  size_t r = 8;
  for (; r + 16 <= len; r += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + r));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + r + 8));
  }
  for (; r + 8 <= len; r += 8)
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + r));
  float m = cpu_hmax8(_mm256_max_ps(m0, m1));
  for (; r < len; r++)
    m = x[r] > m ? x[r] : m;
  if (m != m) /* NaN in the row: the scalar code gives the reference result */
    return false;
  const __m256 vm = _mm256_set1_ps(m), floor = _mm256_set1_ps(-87.0f);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
#define SMX_EXP(off, acc)                                                                          \
  do {                                                                                             \
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + (off)), vm);                                      \
    __m256 e = _mm256_andnot_ps(_mm256_cmp_ps(d, floor, _CMP_LT_OQ),                               \
                                cpu_exp_neg8_fitted(_mm256_sub_ps(_mm256_setzero_ps(), d)));       \
    _mm256_storeu_ps(y + (off), e);                                                                \
    acc = _mm256_add_ps(acc, e);                                                                   \
  } while (0)
  for (r = 0; r + 16 <= len; r += 16) {
    SMX_EXP(r, s0);
    SMX_EXP(r + 8, s1);
  }
  for (; r + 8 <= len; r += 8)
    SMX_EXP(r, s0);
#undef SMX_EXP
  float sum = cpu_hsum8(_mm256_add_ps(s0, s1));
  for (; r < len; r++) {
    y[r] = cpu_ew_expf(x[r] - m);
    sum += y[r];
  }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (r = 0; r + 8 <= len; r += 8)
    _mm256_storeu_ps(y + r, _mm256_mul_ps(_mm256_loadu_ps(y + r), inv));
  for (; r < len; r++)
    y[r] *= 1.0f / sum;
  return true;
}
#endif
static inline bool smx_row_fast_f32(const float *x, float *y, size_t len) {
  (void)x, (void)y, (void)len;
  return false;
}
static inline bool smx_row_fast_f64(const double *x, double *y, size_t len) {
  (void)x, (void)y, (void)len;
  return false;
}

#define SMX_IMPL(NAME, sfx, T, ATTR)                                                               \
  /* One contiguous row. */                                                                        \
  ATTR static void smx_row_##NAME(int mode, const T *x, T *y, size_t len) {                        \
    if (mode == SMX_HARDMAX) {                                                                     \
      size_t bi = 0;                                                                               \
      for (size_t r = 1; r < len; r++)                                                             \
        if (arg_better_##sfx(x[r], x[bi], true, false))                                            \
          bi = r;                                                                                  \
      for (size_t r = 0; r < len; r++)                                                             \
        y[r] = 0;                                                                                  \
      y[bi] = 1;                                                                                   \
      return;                                                                                      \
    }                                                                                              \
    if (mode == SMX_SOFTMAX && smx_row_fast_##NAME(x, y, len))                                     \
      return;                                                                                      \
    T mv[8];                                                                                       \
    for (size_t k = 0; k < 8; k++)                                                                 \
      mv[k] = x[0];                                                                                \
    size_t r = 0;                                                                                  \
    for (; r + 8 <= len; r += 8)                                                                   \
      for (size_t k = 0; k < 8; k++)                                                               \
        mv[k] = x[r + k] > mv[k] ? x[r + k] : mv[k];                                               \
    for (; r < len; r++)                                                                           \
      mv[0] = x[r] > mv[0] ? x[r] : mv[0];                                                         \
    T m = mv[0];                                                                                   \
    for (size_t k = 1; k < 8; k++)                                                                 \
      m = mv[k] > m ? mv[k] : m;                                                                   \
    T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                             \
    r = 0;                                                                                         \
    if (mode == SMX_SOFTMAX) {                                                                     \
      for (; r + 8 <= len; r += 8) {                                                               \
        T e[8];                                                                                    \
        for (size_t k = 0; k < 8; k++)                                                             \
          e[k] = smx_exp_##sfx(x[r + k] - m);                                                      \
        for (size_t k = 0; k < 8; k++) {                                                           \
          y[r + k] = e[k];                                                                         \
          s[k] += e[k];                                                                            \
        }                                                                                          \
      }                                                                                            \
      for (; r < len; r++) {                                                                       \
        y[r] = smx_exp_##sfx(x[r] - m);                                                            \
        s[0] += y[r];                                                                              \
      }                                                                                            \
    } else {                                                                                       \
      for (; r + 8 <= len; r += 8)                                                                 \
        for (size_t k = 0; k < 8; k++)                                                             \
          s[k] += smx_exp_##sfx(x[r + k] - m);                                                     \
      for (; r < len; r++)                                                                         \
        s[0] += smx_exp_##sfx(x[r] - m);                                                           \
    }                                                                                              \
    T sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));                     \
    if (mode == SMX_SOFTMAX) {                                                                     \
      T inv = 1 / sum;                                                                             \
      for (r = 0; r < len; r++)                                                                    \
        y[r] *= inv;                                                                               \
    } else {                                                                                       \
      /* (x - m) - log(sum): subtracting m first keeps the digits when m is large. */              \
      T ls = smx_log_##sfx(sum);                                                                   \
      for (r = 0; r < len; r++)                                                                    \
        y[r] = (x[r] - m) - ls;                                                                    \
    }                                                                                              \
  }                                                                                                \
  ATTR static void smx_range_##NAME(void *arg, size_t begin, size_t end) {                         \
    const axis_job *j = arg;                                                                       \
    const T *x = j->x;                                                                             \
    T *y = j->y;                                                                                   \
    const size_t len = j->v.len, inner = j->v.inner;                                               \
    for (size_t it = begin; it < end; it++) {                                                      \
      size_t o = it / j->iblocks, i0 = (it % j->iblocks) * RED_IB;                                 \
      const T *xb = x + o * len * inner + i0;                                                      \
      T *yb = y + o * len * inner + i0;                                                            \
      if (inner == 1) {                                                                            \
        smx_row_##NAME(j->mode, xb, yb, len);                                                      \
        continue;                                                                                  \
      }                                                                                            \
      size_t bl = inner - i0 < RED_IB ? inner - i0 : RED_IB;                                       \
      T m[RED_IB], s[RED_IB];                                                                      \
      size_t bi[RED_IB];                                                                           \
      for (size_t i = 0; i < bl; i++) {                                                            \
        m[i] = xb[i];                                                                              \
        s[i] = 0;                                                                                  \
        bi[i] = 0;                                                                                 \
      }                                                                                            \
      for (size_t r = 1; r < len; r++) {                                                           \
        const T *xr = xb + r * inner;                                                              \
        if (j->mode == SMX_HARDMAX) {                                                              \
          for (size_t i = 0; i < bl; i++)                                                          \
            if (arg_better_##sfx(xr[i], m[i], true, false)) {                                      \
              m[i] = xr[i];                                                                        \
              bi[i] = r;                                                                           \
            }                                                                                      \
        } else {                                                                                   \
          for (size_t i = 0; i < bl; i++)                                                          \
            m[i] = xr[i] > m[i] ? xr[i] : m[i];                                                    \
        }                                                                                          \
      }                                                                                            \
      if (j->mode == SMX_HARDMAX) {                                                                \
        for (size_t r = 0; r < len; r++)                                                           \
          for (size_t i = 0; i < bl; i++)                                                          \
            yb[r * inner + i] = r == bi[i];                                                        \
        continue;                                                                                  \
      }                                                                                            \
      for (size_t r = 0; r < len; r++) {                                                           \
        const T *xr = xb + r * inner;                                                              \
        T *yr = yb + r * inner;                                                                    \
        if (j->mode == SMX_SOFTMAX) {                                                              \
          for (size_t i = 0; i < bl; i++) {                                                        \
            T e = smx_exp_##sfx(xr[i] - m[i]);                                                     \
            s[i] += e;                                                                             \
            yr[i] = e;                                                                             \
          }                                                                                        \
        } else {                                                                                   \
          for (size_t i = 0; i < bl; i++)                                                          \
            s[i] += smx_exp_##sfx(xr[i] - m[i]);                                                   \
        }                                                                                          \
      }                                                                                            \
      if (j->mode == SMX_SOFTMAX) {                                                                \
        for (size_t i = 0; i < bl; i++)                                                            \
          s[i] = 1 / s[i];                                                                         \
        for (size_t r = 0; r < len; r++)                                                           \
          for (size_t i = 0; i < bl; i++)                                                          \
            yb[r * inner + i] *= s[i];                                                             \
      } else {                                                                                     \
        for (size_t i = 0; i < bl; i++)                                                            \
          s[i] = smx_log_##sfx(s[i]);                                                              \
        for (size_t r = 0; r < len; r++)                                                           \
          for (size_t i = 0; i < bl; i++)                                                          \
            yb[r * inner + i] = (xb[r * inner + i] - m[i]) - s[i];                                 \
      }                                                                                            \
    }                                                                                              \
  }
SMX_IMPL(f32, f32, float, )
SMX_IMPL(f64, f64, double, )
/* An AVX2+FMA twin of the float32 kernel (exp is its cost), chosen at run time by ctx->isa. */
#ifdef CPU_VMATH_HAVE_AVX2
SMX_IMPL(f32_avx2, f32, float, __attribute__((target("avx2,fma"))))
static void (*const smx_f32_avx2)(void *, size_t, size_t) = smx_range_f32_avx2;
#else
static void (*const smx_f32_avx2)(void *, size_t, size_t) = NULL;
#endif

/* The [outer, axis, inner] view: opset < 13 coerces to 2-D at axis (default 1), from 13 the
 * op runs along axis (default -1). */
static tsr_plugin_reason smx_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   axis_view *v, char *msg, size_t size) {
  if (n->n_in < 1 || !in[0].present || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OP, "needs an input and an output");
  uint32_t dt = in[0].dtype;
  if (!cpu_ew_is_float(dt))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  if (out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, input %s",
                      cpu_dtype_name(out[0].dtype), cpu_dtype_name(dt));
  if (!cpu_ew_same_shape(in[0].rank, in[0].dims, out[0].rank, out[0].dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output shape differs from the input's");
  bool coerce = n->opset < 13;
  int64_t a = cpu_attr_int(n, "axis", coerce ? 1 : -1);
  uint32_t axis;
  if (in[0].rank == 0) {
    *v = (axis_view){1, 1, 1};
    return TSR_PLUGIN_REASON_NONE;
  }
  if (!cpu_ew_axis(a, in[0].rank, &axis))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld out of range for rank %u",
                      (long long)a, in[0].rank);
  *v = axis_view_of(&in[0], axis);
  if (coerce) {
    v->len *= v->inner;
    v->inner = 1;
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason check_softmax(const cpu_node *n, char *msg, size_t size) {
  axis_view v;
  return smx_setup(n, n->in, n->out, &v, msg, size);
}

static int run_softmax(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  axis_job j = {.mode = SMX_SOFTMAX};
  char msg[160];
  if (smx_setup(n, in, out, &j.v, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (!red_dims_valid(&in[0]) || !red_dims_valid(&out[0]))
    return cpu_fail(ctx, "tensor dims and data disagree");
  if (out[0].count == 0)
    return 0;
  if (!strcmp(n->op_type, "LogSoftmax"))
    j.mode = SMX_LOGSOFTMAX;
  if (!strcmp(n->op_type, "Hardmax"))
    j.mode = SMX_HARDMAX;
  uint32_t cdt = red_canonical(in[0].dtype, true);
  red_bufs b;
  if (red_bufs_init(ctx, &b, cdt, &in[0], &out[0]))
    return -1;
  j.x = b.x;
  j.y = b.y;
  size_t items = axis_items(&j);
  void (*fn)(void *, size_t, size_t) = cdt == TSR_DTYPE_FLOAT32 ? smx_range_f32 : smx_range_f64;
  if (cdt == TSR_DTYPE_FLOAT32 && ctx->isa == CPU_ISA_AVX2_FMA && smx_f32_avx2)
    fn = smx_f32_avx2;
  cpu_parallel_for(ctx, items, axis_grain(&j), fn, &j);
  red_bufs_finish(&b, &out[0]);
  return 0;
}

/* ---- CumSum ------------------------------------------------------------------------------ */

#define CUM_IMPL(sfx, T)                                                                           \
  static void cum_range_##sfx(void *arg, size_t begin, size_t end) {                               \
    const axis_job *j = arg;                                                                       \
    const T *x = j->x;                                                                             \
    T *y = j->y;                                                                                   \
    const size_t len = j->v.len, inner = j->v.inner;                                               \
    for (size_t it = begin; it < end; it++) {                                                      \
      size_t o = it / j->iblocks, i0 = (it % j->iblocks) * RED_IB;                                 \
      size_t bl = inner - i0 < RED_IB ? inner - i0 : RED_IB;                                       \
      const T *xb = x + o * len * inner + i0;                                                      \
      T *yb = y + o * len * inner + i0;                                                            \
      if (inner == 1) { /* the axis is innermost: one running sum */                               \
        T a = 0;                                                                                   \
        for (size_t k = 0; k < len; k++) {                                                         \
          size_t r = j->reverse ? len - 1 - k : k;                                                 \
          T v = xb[r];                                                                             \
          if (j->exclusive) {                                                                      \
            yb[r] = a;                                                                             \
            a = r_add_##sfx(a, v);                                                                 \
          } else {                                                                                 \
            a = r_add_##sfx(a, v);                                                                 \
            yb[r] = a;                                                                             \
          }                                                                                        \
        }                                                                                          \
        continue;                                                                                  \
      }                                                                                            \
      T acc[RED_IB];                                                                               \
      for (size_t i = 0; i < bl; i++)                                                              \
        acc[i] = 0;                                                                                \
      for (size_t k = 0; k < len; k++) {                                                           \
        size_t r = j->reverse ? len - 1 - k : k;                                                   \
        const T *xr = xb + r * inner;                                                              \
        T *yr = yb + r * inner;                                                                    \
        if (j->exclusive) {                                                                        \
          for (size_t i = 0; i < bl; i++) {                                                        \
            T v = xr[i];                                                                           \
            yr[i] = acc[i];                                                                        \
            acc[i] = r_add_##sfx(acc[i], v);                                                       \
          }                                                                                        \
        } else {                                                                                   \
          for (size_t i = 0; i < bl; i++) {                                                        \
            acc[i] = r_add_##sfx(acc[i], xr[i]);                                                   \
            yr[i] = acc[i];                                                                        \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
CUM_IMPL(f32, float)
CUM_IMPL(f64, double)
CUM_IMPL(i64, int64_t)
CUM_IMPL(u64, uint64_t)

static tsr_plugin_reason cum_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   bool need_axis, uint32_t *axis, char *msg, size_t size) {
  if (n->n_in < 2 || !in[0].present || !in[1].present || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OP, "needs x, axis and an output");
  uint32_t dt = in[0].dtype;
  if (red_canonical(dt, false) == TSR_DTYPE_UNDEFINED)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  if (out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, input %s",
                      cpu_dtype_name(out[0].dtype), cpu_dtype_name(dt));
  if (!cpu_ew_same_shape(in[0].rank, in[0].dims, out[0].rank, out[0].dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output shape differs from the input's");
  const cpu_tensor *a = &in[1];
  if (a->dtype != TSR_DTYPE_INT32 && a->dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "axis must be int32 or int64");
  if (a->rank > 1 || (a->rank == 1 && a->dims[0] != 1))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "axis must be a scalar");
  if (!a->data) {
    if (need_axis)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "axis has no data");
    return TSR_PLUGIN_REASON_NONE;
  }
  if (a->count != 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "axis must be a scalar");
  int64_t v = cpu_read_int(a, 0);
  if (!cpu_ew_axis(v, in[0].rank, axis))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld out of range for rank %u",
                      (long long)v, in[0].rank);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason check_cumsum(const cpu_node *n, char *msg, size_t size) {
  uint32_t axis;
  return cum_setup(n, n->in, n->out, false, &axis, msg, size);
}

static int run_cumsum(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  uint32_t axis;
  char msg[160];
  if (cum_setup(n, in, out, true, &axis, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (!red_dims_valid(&in[0]) || !red_dims_valid(&out[0]))
    return cpu_fail(ctx, "tensor dims and data disagree");
  if (out[0].count == 0)
    return 0;
  axis_job j = {.v = axis_view_of(&in[0], axis)};
  j.exclusive = cpu_attr_int(n, "exclusive", 0) != 0;
  j.reverse = cpu_attr_int(n, "reverse", 0) != 0;
  uint32_t cdt = red_canonical(in[0].dtype, false);
  red_bufs b;
  if (red_bufs_init(ctx, &b, cdt, &in[0], &out[0]))
    return -1;
  j.x = b.x;
  j.y = b.y;
  /* Rows along the axis are sequential; items are (outer, block of inner). */
  j.iblocks = (j.v.inner + RED_IB - 1) / RED_IB;
  size_t items = j.v.outer * j.iblocks;
  void (*fn)(void *, size_t, size_t) = cdt == TSR_DTYPE_FLOAT32   ? cum_range_f32
                                       : cdt == TSR_DTYPE_FLOAT64 ? cum_range_f64
                                       : cdt == TSR_DTYPE_INT64   ? cum_range_i64
                                                                  : cum_range_u64;
  cpu_parallel_for(ctx, items, axis_grain(&j), fn, &j);
  red_bufs_finish(&b, &out[0]);
  return 0;
}

/* ---- the table ---------------------------------------------------------------------------- */

#define RED_OP(name, lo, hi, check, run)                                                           \
  { name, "", lo, hi, check, NULL, run, NULL }

static const cpu_op ops[] = {
    RED_OP("ReduceSum", 1, 17, check_reduce, run_reduce),
    {"ReduceMean", "", 1, 17, check_reduce, NULL, run_reduce, NULL, reduce_nchwc_role},
    RED_OP("ReduceMax", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceMin", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceProd", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceL1", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceL2", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceLogSum", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceLogSumExp", 1, 17, check_reduce, run_reduce),
    RED_OP("ReduceSumSquare", 1, 17, check_reduce, run_reduce),
    RED_OP("ArgMax", 1, 17, check_arg, run_arg),
    RED_OP("ArgMin", 1, 17, check_arg, run_arg),
    RED_OP("Softmax", 1, 17, check_softmax, run_softmax),
    RED_OP("LogSoftmax", 1, 17, check_softmax, run_softmax),
    RED_OP("Hardmax", 1, 17, check_softmax, run_softmax),
    RED_OP("CumSum", 11, 17, check_cumsum, run_cumsum),
};

const cpu_op_list cpu_ops_reduce = {ops, sizeof ops / sizeof ops[0]};
