/* Shape and data-movement kernels: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
 * Split, Slice, Gather, GatherElements, GatherND, Scatter(Elements), ScatterND, Expand, Tile,
 * Pad, Shape, Size, Cast, CastLike, ConstantOfShape, Range, OneHot, Trilu, DepthToSpace,
 * SpaceToDepth, EyeLike, TopK, NonZero and Compress.
 *
 * Data movement never looks at values: it works on element sizes (1, 2, 4 or 8 bytes), so every
 * storable dtype works. Most of these ops reduce to one engine, a strided view copy: the output
 * is written contiguously while the source is read through per-axis strides (0 for broadcast,
 * negative for reversed slices). Transpose, Slice, Expand, Tile, DepthToSpace and SpaceToDepth
 * only build such a view. Pad uses a second engine that reads through per-axis index maps.
 *
 * The host gives output shapes; every kernel recomputes the shape from its inputs and
 * attributes and fails when they disagree, so a wrong shape can never become an out-of-bounds
 * access.
 *
 * NOTE: this file is long because the meson build lists one file per family; the sections
 * (engines, reshapes, gathers/scatters, fills, cast, sorting) would split cleanly if the family
 * ever gets more than one file. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"

/* Ranks above this are refused at compile time and failed at run time. The views of Tile and
 * DepthToSpace use up to twice as many axes, kept on the stack; ONNX models stay far below. */
#define SHP_MAX_RANK 32
#define VIEW_MAX_RANK (2 * SHP_MAX_RANK)

/* The least number of bytes a parallel chunk should move to be worth a thread. */
#define PAR_BYTES 32768

/* ---- Common checks ------------------------------------------------------------------------ */

static bool has_in(const cpu_node *n, const cpu_tensor *in, uint32_t k) {
  return k < n->n_in && in[k].present;
}

static bool is_int_dtype(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_INT8:
  case TSR_DTYPE_INT16:
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_INT64:
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_UINT16:
  case TSR_DTYPE_UINT32:
  case TSR_DTYPE_UINT64: return true;
  default: return false;
  }
}

static bool is_float_dtype(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
         dt == TSR_DTYPE_BFLOAT16;
}

/* Compile-time check shared by every op here: present tensors have a fixed element size and a
 * rank the engines take, and the first `n_req` inputs are present. */
static tsr_plugin_reason check_tensors(const cpu_node *n, uint32_t n_req, char *msg,
                                       size_t size) {
  for (uint32_t k = 0; k < n_req; k++)
    if (!has_in(n, n->in, k))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "required input %u is missing", k);
  for (uint32_t k = 0; k < n->n_in + n->n_out; k++) {
    const cpu_tensor *t = k < n->n_in ? &n->in[k] : &n->out[k - n->n_in];
    const char *what = k < n->n_in ? "input" : "output";
    uint32_t idx = k < n->n_in ? k : k - n->n_in;
    if (!t->present) continue;
    if (cpu_dtype_size(t->dtype) == 0)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "%s %u has dtype %s", what, idx,
                        cpu_dtype_name(t->dtype));
    if (t->rank > SHP_MAX_RANK)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "%s %u has rank %u, above %d", what,
                        idx, t->rank, SHP_MAX_RANK);
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* Refuses an index-like input (indices, axes, shapes) whose dtype is not an integer. */
static tsr_plugin_reason check_int_input(const cpu_node *n, uint32_t k, const char *what,
                                         char *msg, size_t size) {
  if (has_in(n, n->in, k) && !is_int_dtype(n->in[k].dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "%s has dtype %s, not an integer",
                      what, cpu_dtype_name(n->in[k].dtype));
  return TSR_PLUGIN_REASON_NONE;
}

/* Run-time counterpart: required inputs and outputs present, ranks and dtypes usable. */
static int need_io(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, uint32_t n_in,
                   const cpu_tensor *out, uint32_t n_out) {
  for (uint32_t k = 0; k < n_in; k++)
    if (!has_in(n, in, k)) return cpu_fail(ctx, "required input %u is missing", k);
  for (uint32_t k = 0; k < n_out; k++)
    if (k >= n->n_out || !out[k].present) return cpu_fail(ctx, "required output %u is missing", k);
  for (uint32_t k = 0; k < n->n_in + n->n_out; k++) {
    const cpu_tensor *t = k < n->n_in ? &in[k] : &out[k - n->n_in];
    if (!t->present) continue;
    if (t->rank > SHP_MAX_RANK)
      return cpu_fail(ctx, "%s %u has rank %u, above the supported %d",
                      k < n->n_in ? "input" : "output", k < n->n_in ? k : k - n->n_in, t->rank,
                      SHP_MAX_RANK);
    if (cpu_dtype_size(t->dtype) == 0)
      return cpu_fail(ctx, "%s %u has dtype %s, which has no fixed element size",
                      k < n->n_in ? "input" : "output", k < n->n_in ? k : k - n->n_in,
                      cpu_dtype_name(t->dtype));
  }
  return 0;
}

static int same_dtype(cpu_ctx *ctx, const cpu_tensor *a, const cpu_tensor *b, const char *what) {
  if (a->dtype == b->dtype) return 0;
  return cpu_fail(ctx, "%s has dtype %s but the data has %s", what, cpu_dtype_name(b->dtype),
                  cpu_dtype_name(a->dtype));
}

static const char *fmt_dims(char *buf, size_t size, size_t rank, const int64_t *dims) {
  size_t pos = 0;
  buf[0] = '\0';
  int w = snprintf(buf, size, "[");
  pos = w > 0 ? (size_t)w : 0;
  for (size_t i = 0; i < rank && pos < size; i++) {
    w = snprintf(buf + pos, size - pos, "%s%lld", i ? "," : "", (long long)dims[i]);
    pos += w > 0 ? (size_t)w : 0;
  }
  if (pos < size) snprintf(buf + pos, size - pos, "]");
  return buf;
}

/* Fails unless `t` has exactly the shape the kernel computed. */
static int expect_dims(cpu_ctx *ctx, const cpu_tensor *t, const char *what, size_t rank,
                       const int64_t *dims) {
  bool ok = t->rank == rank;
  for (size_t i = 0; ok && i < rank; i++) ok = t->dims[i] == dims[i];
  if (ok) return 0;
  char a[192], b[192];
  return cpu_fail(ctx, "%s has shape %s but the inputs give %s", what,
                  fmt_dims(a, sizeof a, t->rank, t->dims), fmt_dims(b, sizeof b, rank, dims));
}

static bool fix_axis(int64_t *axis, int64_t rank) {
  if (*axis < -rank || *axis >= rank) return false;
  if (*axis < 0) *axis += rank;
  return true;
}

static int run_axis(cpu_ctx *ctx, int64_t *axis, int64_t rank, const char *what) {
  int64_t a = *axis;
  if (!fix_axis(axis, rank))
    return cpu_fail(ctx, "%s %lld is out of range for rank %lld", what, (long long)a,
                    (long long)rank);
  return 0;
}

static size_t prod(const int64_t *dims, size_t begin, size_t end) {
  size_t p = 1;
  for (size_t i = begin; i < end; i++) p *= (size_t)dims[i];
  return p;
}

static void row_strides(const int64_t *dims, size_t rank, int64_t *strides) {
  int64_t s = 1;
  for (size_t i = rank; i-- > 0;) {
    strides[i] = s;
    s *= dims[i];
  }
}

/* Reads an integer list input (axes, pads, repeats, ...) of at most `cap` entries. */
static int read_int_list(cpu_ctx *ctx, const cpu_tensor *t, const char *what, int64_t *dst,
                         size_t cap, size_t *count) {
  if (!is_int_dtype(t->dtype))
    return cpu_fail(ctx, "%s has dtype %s, not an integer", what, cpu_dtype_name(t->dtype));
  if (t->rank > 1) return cpu_fail(ctx, "%s must be 1-D, got rank %u", what, t->rank);
  if (t->count > cap)
    return cpu_fail(ctx, "%s has %zu entries, more than the %zu allowed", what, t->count, cap);
  for (size_t i = 0; i < t->count; i++) dst[i] = cpu_read_int(t, i);
  *count = t->count;
  return 0;
}

/* Reads a scalar (or one-element) integer input. */
static int read_int_scalar(cpu_ctx *ctx, const cpu_tensor *t, const char *what, int64_t *v) {
  if (!is_int_dtype(t->dtype))
    return cpu_fail(ctx, "%s has dtype %s, not an integer", what, cpu_dtype_name(t->dtype));
  if (t->count != 1) return cpu_fail(ctx, "%s must hold one value, got %zu", what, t->count);
  *v = cpu_read_int(t, 0);
  return 0;
}

/* ---- Element copies ----------------------------------------------------------------------- */

/* Copies n elements of esize bytes from src, read every `stride` elements, to contiguous dst.
 * Fixed-size memcpy compiles to plain moves and keeps the code free of aliasing questions. */
static void copy_line(uint8_t *dst, const uint8_t *src, size_t n, ptrdiff_t stride,
                      size_t esize) {
  if (stride == 1) {
    memcpy(dst, src, n * esize);
    return;
  }
#define COPY_LINE(SZ)                                                                            \
  for (size_t i = 0; i < n; i++) memcpy(dst + i * SZ, src + (ptrdiff_t)i * stride * SZ, SZ);    \
  break;
  switch (esize) {
  case 1: COPY_LINE(1)
  case 2: COPY_LINE(2)
  case 4: COPY_LINE(4)
  case 8: COPY_LINE(8)
  default:
    for (size_t i = 0; i < n; i++)
      memcpy(dst + i * esize, src + (ptrdiff_t)i * stride * (ptrdiff_t)esize, esize);
  }
#undef COPY_LINE
}

/* Fills n elements of dst with the esize-byte value at val (which must not lie in dst). */
static void fill_elems(uint8_t *dst, const void *val, size_t n, size_t esize) {
  if (n == 0) return;
  memcpy(dst, val, esize);
  size_t done = 1;
  while (done < n) {
    size_t c = done < n - done ? done : n - done;
    memcpy(dst + done * esize, dst, c * esize);
    done += c;
  }
}

typedef struct memcpy_job {
  uint8_t *dst;
  const uint8_t *src;
} memcpy_job;

static void memcpy_chunk(void *arg, size_t begin, size_t end) {
  const memcpy_job *j = arg;
  memcpy(j->dst + begin, j->src + begin, end - begin);
}

/* Copies a whole buffer; big ones on the pool. Identical pointers are left alone, so a host
 * that runs Reshape in place pays nothing. */
static void par_memcpy(cpu_ctx *ctx, void *dst, const void *src, size_t nbytes) {
  if (dst == src || nbytes == 0) return;
  memcpy_job j = {dst, src};
  cpu_parallel_for(ctx, nbytes, 1u << 20, memcpy_chunk, &j);
}

/* ---- The strided view engine -------------------------------------------------------------- */

/* The output, contiguous in `dims` order, reads element (i_0, ..., i_r-1) of the source at
 * base + sum(i_k * stride[k]) elements. */
typedef struct view {
  size_t rank;
  int64_t dims[VIEW_MAX_RANK];
  int64_t stride[VIEW_MAX_RANK];
} view;

/* Drops axes of size 1 and merges neighbours that address memory as one axis, so that a
 * transpose with an untouched inner block, or a slice with unit inner steps, copies long runs. */
static void view_coalesce(view *v) {
  size_t r = 0;
  for (size_t i = 0; i < v->rank; i++) {
    if (v->dims[i] == 1) continue;
    if (r > 0 && v->stride[r - 1] == v->stride[i] * v->dims[i]) {
      v->dims[r - 1] *= v->dims[i];
      v->stride[r - 1] = v->stride[i];
      continue;
    }
    v->dims[r] = v->dims[i];
    v->stride[r] = v->stride[i];
    r++;
  }
  v->rank = r;
}

typedef struct view_job {
  const view *v;
  const uint8_t *src;
  uint8_t *dst;
  size_t esize;
} view_job;

/* One unit per output row (all axes but the last). */
static void view_rows(void *arg, size_t begin, size_t end) {
  const view_job *j = arg;
  const view *v = j->v;
  size_t r = v->rank, es = j->esize;
  size_t inner = (size_t)v->dims[r - 1];
  ptrdiff_t istride = (ptrdiff_t)v->stride[r - 1];
  int64_t idx[VIEW_MAX_RANK];
  ptrdiff_t off = 0;
  size_t rem = begin;
  for (size_t k = r - 1; k-- > 0;) {
    idx[k] = (int64_t)(rem % (size_t)v->dims[k]);
    rem /= (size_t)v->dims[k];
    off += (ptrdiff_t)(idx[k] * v->stride[k]);
  }
  uint8_t *dst = j->dst + begin * inner * es;
  for (size_t row = begin; row < end; row++) {
    copy_line(dst, j->src + off * (ptrdiff_t)es, inner, istride, es);
    dst += inner * es;
    for (size_t k = r - 1; k-- > 0;) {
      off += (ptrdiff_t)v->stride[k];
      if (++idx[k] < v->dims[k]) break;
      off -= (ptrdiff_t)(v->stride[k] * v->dims[k]);
      idx[k] = 0;
    }
  }
}

#define TILE_R 32

/* One unit per (outer index, block of TILE_R rows of the second-to-last axis): transposing
 * tile by tile keeps both the rows written and the columns read in cache. When the columns
 * read lie a multiple of 4 KiB apart they all fall into the same cache sets, so the tile reads
 * fewer of them at a time (4096 x 4096 float: 28 ms instead of 47 ms on one core). */
static void view_tiles(void *arg, size_t begin, size_t end) {
  const view_job *j = arg;
  const view *v = j->v;
  size_t r = v->rank, es = j->esize;
  size_t rows = (size_t)v->dims[r - 2], cols = (size_t)v->dims[r - 1];
  ptrdiff_t rs = (ptrdiff_t)v->stride[r - 2], cs = (ptrdiff_t)v->stride[r - 1];
  size_t nblk = (rows + TILE_R - 1) / TILE_R;
  size_t col_bytes = (size_t)(cs < 0 ? -cs : cs) * es;
  size_t tile_c = col_bytes % 4096 == 0 ? 8 : 32;
  for (size_t u = begin; u < end; u++) {
    size_t outer = u / nblk, blk = u % nblk;
    ptrdiff_t off = 0;
    size_t rem = outer;
    for (size_t k = r - 2; k-- > 0;) {
      size_t i = rem % (size_t)v->dims[k];
      rem /= (size_t)v->dims[k];
      off += (ptrdiff_t)i * (ptrdiff_t)v->stride[k];
    }
    size_t i0 = blk * TILE_R, i1 = i0 + TILE_R < rows ? i0 + TILE_R : rows;
    uint8_t *dbase = j->dst + outer * rows * cols * es;
    for (size_t c0 = 0; c0 < cols; c0 += tile_c) {
      size_t c1 = c0 + tile_c < cols ? c0 + tile_c : cols;
      for (size_t i = i0; i < i1; i++) {
        const uint8_t *s = j->src + (off + (ptrdiff_t)i * rs + (ptrdiff_t)c0 * cs) * (ptrdiff_t)es;
        copy_line(dbase + (i * cols + c0) * es, s, c1 - c0, cs, es);
      }
    }
  }
}

/* Copies the view of `src` (pointing at the element of output index 0) into contiguous dst.
 * The caller has checked that every address the view reaches lies inside the source. */
static void view_copy(cpu_ctx *ctx, view *v, const void *src, void *dst, size_t esize) {
  for (size_t k = 0; k < v->rank; k++)
    if (v->dims[k] == 0) return;
  view_coalesce(v);
  if (v->rank == 0) {
    if (dst != src)
      memcpy(dst, src, esize);
    return;
  }
  /* The input's own bytes in order, onto themselves: a Transpose that moves only axes of
   * size 1, whose output the planner gave its input's buffer. */
  if (src == dst && v->rank == 1 && v->stride[0] == 1)
    return;
  view_job j = {v, src, dst, esize};
  size_t r = v->rank, inner = (size_t)v->dims[r - 1];
  ptrdiff_t is = (ptrdiff_t)v->stride[r - 1];
  if (r >= 2 && is != 1 && is != 0 && inner > 1) {
    size_t nblk = ((size_t)v->dims[r - 2] + TILE_R - 1) / TILE_R;
    size_t units = prod(v->dims, 0, r - 2) * nblk;
    size_t unit_bytes = TILE_R * inner * esize;
    size_t grain = unit_bytes >= PAR_BYTES ? 1 : PAR_BYTES / unit_bytes;
    cpu_parallel_for(ctx, units, grain, view_tiles, &j);
  } else {
    size_t rows = prod(v->dims, 0, r - 1);
    size_t row_bytes = inner * esize;
    size_t grain = row_bytes >= PAR_BYTES ? 1 : PAR_BYTES / row_bytes;
    cpu_parallel_for(ctx, rows, grain, view_rows, &j);
  }
}

/* ---- The index-map engine (Pad) ------------------------------------------------------------ */

/* Output element (o_0, ..., o_r-1) reads source element (maps[0][o_0], ..., maps[r-1][o_r-1]),
 * or the fill value when any map entry is -1. The last axis is pre-cut into runs. */
typedef struct map_job {
  size_t rank;
  const int64_t *out_dims;
  int64_t *const *maps;
  const int64_t *in_strides;
  const uint8_t *src;
  uint8_t *dst;
  size_t esize;
  const uint8_t *fill;
  const int64_t *runs; /* triplets: output start, length, source start or -1 */
  size_t n_runs;
} map_job;

static void map_rows(void *arg, size_t begin, size_t end) {
  const map_job *j = arg;
  size_t r = j->rank, es = j->esize;
  size_t inner = (size_t)j->out_dims[r - 1];
  int64_t idx[SHP_MAX_RANK];
  size_t rem = begin;
  for (size_t k = r - 1; k-- > 0;) {
    idx[k] = (int64_t)(rem % (size_t)j->out_dims[k]);
    rem /= (size_t)j->out_dims[k];
  }
  for (size_t row = begin; row < end; row++) {
    uint8_t *dst = j->dst + row * inner * es;
    bool filled = false;
    int64_t off = 0;
    for (size_t k = 0; k + 1 < r; k++) {
      int64_t m = j->maps[k][idx[k]];
      if (m < 0) {
        filled = true;
        break;
      }
      off += m * j->in_strides[k];
    }
    if (filled) {
      fill_elems(dst, j->fill, inner, es);
    } else {
      for (size_t s = 0; s < j->n_runs; s++) {
        const int64_t *run = &j->runs[3 * s];
        if (run[2] < 0)
          fill_elems(dst + (size_t)run[0] * es, j->fill, (size_t)run[1], es);
        else
          memcpy(dst + (size_t)run[0] * es, j->src + (size_t)(off + run[2]) * es,
                 (size_t)run[1] * es);
      }
    }
    for (size_t k = r - 1; k-- > 0;) {
      if (++idx[k] < j->out_dims[k]) break;
      idx[k] = 0;
    }
  }
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ------------------------------------------------- */

static tsr_plugin_reason check_copy(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if (n->n_out < 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "the node has no output");
  if (n->out[0].dtype != n->in[0].dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype %s differs from %s",
                      cpu_dtype_name(n->out[0].dtype), cpu_dtype_name(n->in[0].dtype));
  return TSR_PLUGIN_REASON_NONE;
}

/* The common tail of the reshaping ops: the output has the input's bytes. */
static int copy_all(cpu_ctx *ctx, const cpu_tensor *in, cpu_tensor *out) {
  if (same_dtype(ctx, in, out, "the output")) return -1;
  if (out->count != in->count)
    return cpu_fail(ctx, "the output has %zu elements but the input has %zu", out->count,
                    in->count);
  par_memcpy(ctx, out->data, in->data, in->nbytes);
  return 0;
}

static int run_reshape(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  /* The shape comes from input 1 (opset >= 5) or the attribute `shape`; it must agree with
   * the output the host inferred. */
  int64_t shape[SHP_MAX_RANK];
  size_t len = 0;
  bool have = false;
  if (n->opset >= 5) {
    if (!has_in(n, in, 1)) return cpu_fail(ctx, "input 1 (shape) is missing");
    if (read_int_list(ctx, &in[1], "shape", shape, SHP_MAX_RANK, &len)) return -1;
    have = true;
  } else {
    const int64_t *a;
    len = cpu_attr_ints(n, "shape", &a);
    if (len > SHP_MAX_RANK) return cpu_fail(ctx, "attribute shape has %zu entries", len);
    for (size_t i = 0; i < len; i++) shape[i] = a[i];
    have = a != NULL;
  }
  if (have) {
    bool allowzero = n->opset >= 14 && cpu_attr_int(n, "allowzero", 0) != 0;
    if (len != out[0].rank)
      return cpu_fail(ctx, "shape has %zu entries but the output has rank %u", len, out[0].rank);
    int infer = 0;
    for (size_t i = 0; i < len; i++) {
      int64_t want = shape[i];
      if (want == 0 && !allowzero) {
        if (i >= in[0].rank)
          return cpu_fail(ctx, "shape entry %zu is 0 but the input has rank %u", i, in[0].rank);
        want = in[0].dims[i];
      }
      if (want == -1) {
        if (++infer > 1) return cpu_fail(ctx, "shape has more than one -1");
        continue;
      }
      if (want < 0) return cpu_fail(ctx, "shape entry %zu is %lld", i, (long long)shape[i]);
      if (want != out[0].dims[i])
        return cpu_fail(ctx, "shape entry %zu gives %lld but the output dimension is %lld", i,
                        (long long)want, (long long)out[0].dims[i]);
    }
  }
  return copy_all(ctx, &in[0], &out[0]);
}

static int run_flatten(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  int64_t r = in[0].rank, axis = cpu_attr_int(n, "axis", 1);
  if (axis < -r || axis > r)
    return cpu_fail(ctx, "axis %lld is out of range for rank %lld", (long long)axis,
                    (long long)r);
  if (axis < 0) axis += r;
  int64_t dims[2] = {1, 1};
  for (int64_t i = 0; i < r; i++) dims[i < axis ? 0 : 1] *= in[0].dims[i];
  if (expect_dims(ctx, &out[0], "the output", 2, dims)) return -1;
  return copy_all(ctx, &in[0], &out[0]);
}

/* Reads the axes of Squeeze/Unsqueeze from the attribute (opset < 13) or input 1. */
static int read_axes(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, int64_t *axes,
                     size_t *count, bool *given) {
  *count = 0;
  *given = false;
  if (n->opset >= 13) {
    if (!has_in(n, in, 1)) return 0;
    *given = true;
    return read_int_list(ctx, &in[1], "axes", axes, SHP_MAX_RANK, count);
  }
  const int64_t *a;
  size_t len = cpu_attr_ints(n, "axes", &a);
  if (!a) return 0;
  if (len > SHP_MAX_RANK) return cpu_fail(ctx, "attribute axes has %zu entries", len);
  for (size_t i = 0; i < len; i++) axes[i] = a[i];
  *count = len;
  *given = true;
  return 0;
}

static int run_squeeze(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  int64_t axes[SHP_MAX_RANK];
  size_t na;
  bool given;
  if (read_axes(ctx, n, in, axes, &na, &given)) return -1;
  int64_t r = in[0].rank;
  bool drop[SHP_MAX_RANK] = {false};
  for (size_t i = 0; i < na; i++) {
    if (run_axis(ctx, &axes[i], r, "axis")) return -1;
    if (drop[axes[i]]) return cpu_fail(ctx, "axis %lld appears twice", (long long)axes[i]);
    if (in[0].dims[axes[i]] != 1)
      return cpu_fail(ctx, "axis %lld has size %lld, not 1", (long long)axes[i],
                      (long long)in[0].dims[axes[i]]);
    drop[axes[i]] = true;
  }
  int64_t dims[SHP_MAX_RANK];
  size_t nd = 0;
  for (int64_t i = 0; i < r; i++) {
    bool d = given ? drop[i] : in[0].dims[i] == 1;
    if (!d) dims[nd++] = in[0].dims[i];
  }
  if (expect_dims(ctx, &out[0], "the output", nd, dims)) return -1;
  return copy_all(ctx, &in[0], &out[0]);
}

static int run_unsqueeze(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                         cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  int64_t axes[SHP_MAX_RANK];
  size_t na;
  bool given;
  if (read_axes(ctx, n, in, axes, &na, &given)) return -1;
  if (!given) return cpu_fail(ctx, "axes are missing");
  int64_t r = (int64_t)in[0].rank + (int64_t)na;
  if (r > SHP_MAX_RANK) return cpu_fail(ctx, "the output rank %lld is too large", (long long)r);
  bool add[SHP_MAX_RANK] = {false};
  for (size_t i = 0; i < na; i++) {
    if (run_axis(ctx, &axes[i], r, "axis")) return -1;
    if (add[axes[i]]) return cpu_fail(ctx, "axis %lld appears twice", (long long)axes[i]);
    add[axes[i]] = true;
  }
  int64_t dims[SHP_MAX_RANK];
  size_t k = 0;
  for (int64_t i = 0; i < r; i++) dims[i] = add[i] ? 1 : in[0].dims[k++];
  if (expect_dims(ctx, &out[0], "the output", (size_t)r, dims)) return -1;
  return copy_all(ctx, &in[0], &out[0]);
}

/* ---- Transpose, DepthToSpace, SpaceToDepth ------------------------------------------------ */

static tsr_plugin_reason check_transpose(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  const int64_t *perm;
  size_t np = cpu_attr_ints(n, "perm", &perm);
  if (!perm) return TSR_PLUGIN_REASON_NONE;
  bool seen[SHP_MAX_RANK] = {false};
  if (np != n->in[0].rank)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "perm has %zu entries for rank %u",
                      np, n->in[0].rank);
  for (size_t i = 0; i < np; i++) {
    if (perm[i] < 0 || perm[i] >= (int64_t)np || seen[perm[i]])
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "perm is not a permutation");
    seen[perm[i]] = true;
  }
  return TSR_PLUGIN_REASON_NONE;
}

static int run_transpose(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                         cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  size_t r = in[0].rank;
  int64_t perm[SHP_MAX_RANK];
  const int64_t *p;
  size_t np = cpu_attr_ints(n, "perm", &p);
  if (p) {
    if (np != r) return cpu_fail(ctx, "perm has %zu entries but the input has rank %zu", np, r);
    bool seen[SHP_MAX_RANK] = {false};
    for (size_t i = 0; i < r; i++) {
      if (p[i] < 0 || p[i] >= (int64_t)r || seen[p[i]])
        return cpu_fail(ctx, "perm entry %zu (%lld) is out of range or repeated", i,
                        (long long)p[i]);
      seen[p[i]] = true;
      perm[i] = p[i];
    }
  } else {
    for (size_t i = 0; i < r; i++) perm[i] = (int64_t)(r - 1 - i);
  }
  int64_t strides[SHP_MAX_RANK];
  row_strides(in[0].dims, r, strides);
  view v = {.rank = r};
  for (size_t i = 0; i < r; i++) {
    v.dims[i] = in[0].dims[perm[i]];
    v.stride[i] = strides[perm[i]];
  }
  if (expect_dims(ctx, &out[0], "the output", r, v.dims)) return -1;
  if (out[0].count == 0) return 0;
  view_copy(ctx, &v, in[0].data, out[0].data, cpu_dtype_size(in[0].dtype));
  return 0;
}

static tsr_plugin_reason check_depth_space(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  if (n->in[0].rank != 4)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input must be 4-D, got rank %u",
                      n->in[0].rank);
  if (cpu_attr_int(n, "blocksize", 0) < 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "blocksize must be positive");
  const char *mode = cpu_attr_string(n, "mode", "DCR");
  if (!strcmp(n->op_type, "DepthToSpace") && strcmp(mode, "DCR") && strcmp(mode, "CRD"))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "mode %s", mode);
  return TSR_PLUGIN_REASON_NONE;
}

/* DepthToSpace and SpaceToDepth are a reshape to 6-D, a transpose and a reshape back: one
 * view over the input. */
static int run_depth_space(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                           cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  if (in[0].rank != 4) return cpu_fail(ctx, "input must be 4-D, got rank %u", in[0].rank);
  int64_t b = cpu_attr_int(n, "blocksize", 0);
  if (b < 1) return cpu_fail(ctx, "blocksize %lld must be positive", (long long)b);
  const int64_t *d = in[0].dims;
  int64_t N = d[0], C = d[1], H = d[2], W = d[3];
  bool to_space = !strcmp(n->op_type, "DepthToSpace");
  int64_t dims6[6], perm[6], want[4];
  if (to_space) {
    if (C % (b * b))
      return cpu_fail(ctx, "channels %lld are not a multiple of blocksize^2 = %lld",
                      (long long)C, (long long)(b * b));
    bool crd = n->opset >= 11 && !strcmp(cpu_attr_string(n, "mode", "DCR"), "CRD");
    int64_t c = C / (b * b);
    if (crd) { /* [N, c, b, b, H, W] -> [N, c, H, b, W, b] */
      int64_t d6[6] = {N, c, b, b, H, W}, p6[6] = {0, 1, 4, 2, 5, 3};
      memcpy(dims6, d6, sizeof d6);
      memcpy(perm, p6, sizeof p6);
    } else { /* [N, b, b, c, H, W] -> [N, c, H, b, W, b] */
      int64_t d6[6] = {N, b, b, c, H, W}, p6[6] = {0, 3, 4, 1, 5, 2};
      memcpy(dims6, d6, sizeof d6);
      memcpy(perm, p6, sizeof p6);
    }
    int64_t w4[4] = {N, c, H * b, W * b};
    memcpy(want, w4, sizeof w4);
  } else {
    if (H % b || W % b)
      return cpu_fail(ctx, "height %lld and width %lld must be multiples of blocksize %lld",
                      (long long)H, (long long)W, (long long)b);
    /* [N, C, H/b, b, W/b, b] -> [N, b, b, C, H/b, W/b] */
    int64_t d6[6] = {N, C, H / b, b, W / b, b}, p6[6] = {0, 3, 5, 1, 2, 4};
    memcpy(dims6, d6, sizeof d6);
    memcpy(perm, p6, sizeof p6);
    int64_t w4[4] = {N, C * b * b, H / b, W / b};
    memcpy(want, w4, sizeof w4);
  }
  if (expect_dims(ctx, &out[0], "the output", 4, want)) return -1;
  if (out[0].count == 0) return 0;
  int64_t strides[6];
  row_strides(dims6, 6, strides);
  view v = {.rank = 6};
  for (int i = 0; i < 6; i++) {
    v.dims[i] = dims6[perm[i]];
    v.stride[i] = strides[perm[i]];
  }
  view_copy(ctx, &v, in[0].data, out[0].data, cpu_dtype_size(in[0].dtype));
  return 0;
}

/* ---- Concat, Split ------------------------------------------------------------------------- */

static tsr_plugin_reason check_concat(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if (n->opset >= 4 && !cpu_has_attr(n, "axis"))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute axis is missing");
  for (uint32_t k = 0; k < n->n_in; k++)
    if (n->in[k].present && n->in[k].dtype != n->in[0].dtype)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "inputs have different dtypes");
  if (n->n_out < 1 || n->out[0].dtype != n->in[0].dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype differs from inputs");
  return TSR_PLUGIN_REASON_NONE;
}

typedef struct concat_job {
  const cpu_tensor *in;
  uint32_t n_in;
  uint8_t *dst;
  const size_t *chunk; /* bytes per outer row of each input */
  size_t row_bytes;    /* bytes per outer row of the output */
  size_t total;        /* bytes of the output */
} concat_job;

/* The output in pieces of PAR_BYTES rather than in rows: Concat along the channels of one
 * image is a single row of a few large copies, which rows would leave to one thread. */
static void concat_pieces(void *arg, size_t p0, size_t p1) {
  const concat_job *j = arg;
  size_t b = p0 * PAR_BYTES, b1 = p1 * PAR_BYTES < j->total ? p1 * PAR_BYTES : j->total;
  size_t o = b / j->row_bytes, off = b % j->row_bytes;
  while (b < b1) {
    /* The input whose chunk of row o holds byte off of the row. */
    uint32_t k = 0;
    size_t at = 0;
    while (at + j->chunk[k] <= off)
      at += j->chunk[k++];
    size_t n = j->chunk[k] - (off - at) < b1 - b ? j->chunk[k] - (off - at) : b1 - b;
    memcpy(j->dst + b, (const uint8_t *)j->in[k].data + o * j->chunk[k] + (off - at), n);
    b += n;
    off += n;
    if (off == j->row_bytes)
      off = 0, o++;
  }
}

static int run_concat(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  const cpu_tensor *first = &in[0];
  int64_t r = first->rank;
  int64_t axis = cpu_attr_int(n, "axis", 1);
  if (n->opset >= 4 && !cpu_has_attr(n, "axis")) return cpu_fail(ctx, "attribute axis is missing");
  if (r == 0) return cpu_fail(ctx, "inputs must have rank >= 1");
  if (run_axis(ctx, &axis, r, "axis")) return -1;
  int64_t dims[SHP_MAX_RANK];
  memcpy(dims, first->dims, (size_t)r * sizeof *dims);
  dims[axis] = 0;
  for (uint32_t k = 0; k < n->n_in; k++) {
    if (!in[k].present) continue;
    if (same_dtype(ctx, first, &in[k], "an input")) return -1;
    if (in[k].rank != (uint32_t)r)
      return cpu_fail(ctx, "input %u has rank %u but input 0 has rank %lld", k, in[k].rank,
                      (long long)r);
    for (int64_t i = 0; i < r; i++)
      if (i != axis && in[k].dims[i] != first->dims[i])
        return cpu_fail(ctx, "input %u has size %lld on axis %lld but input 0 has %lld", k,
                        (long long)in[k].dims[i], (long long)i, (long long)first->dims[i]);
    dims[axis] += in[k].dims[axis];
  }
  if (same_dtype(ctx, first, &out[0], "the output")) return -1;
  if (expect_dims(ctx, &out[0], "the output", (size_t)r, dims)) return -1;
  if (out[0].count == 0) return 0;
  size_t es = cpu_dtype_size(first->dtype);
  size_t inner = prod(dims, (size_t)axis + 1, (size_t)r) * es;
  size_t *chunk = malloc(n->n_in * sizeof *chunk);
  if (!chunk) return cpu_fail(ctx, "out of memory");
  for (uint32_t k = 0; k < n->n_in; k++)
    chunk[k] = in[k].present ? (size_t)in[k].dims[axis] * inner : 0;
  concat_job j = {in, n->n_in, out[0].data, chunk, (size_t)dims[axis] * inner,
                  out[0].count * es};
  cpu_parallel_for(ctx, (j.total + PAR_BYTES - 1) / PAR_BYTES, 1, concat_pieces, &j);
  free(chunk);
  return 0;
}

/* Concat along the channels of 4-D float32 tensors passes the blocked layout through
 * (cpu_op.nchwc_role): with every input's channels a multiple of eight (plugin.c lays out
 * only such values), an image's channels are the same bytes in NCHW and in NCHW8c, so
 * run_concat's copies of each input's image after image serve both. SqueezeNet's fire
 * modules end in one. */
static cpu_nchwc_role concat_nchwc_role(const cpu_node *n, cpu_isa isa) {
  (void)isa;
  const cpu_tensor *y = &n->out[0];
  if (n->n_out != 1 || !y->present || y->dtype != TSR_DTYPE_FLOAT32 || y->rank != 4)
    return CPU_NCHWC_NONE;
  int64_t axis = cpu_attr_int(n, "axis", 1);
  if (axis != 1 && axis != -3)
    return CPU_NCHWC_NONE;
  for (uint32_t k = 0; k < n->n_in; k++) {
    const cpu_tensor *t = &n->in[k];
    if (!t->present || t->is_const || t->dtype != TSR_DTYPE_FLOAT32 || t->rank != 4)
      return CPU_NCHWC_NONE;
  }
  return CPU_NCHWC_FREE;
}

static tsr_plugin_reason check_split(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if (n->opset >= 13 && (r = check_int_input(n, 1, "split", msg, size))) return r;
  for (uint32_t k = 0; k < n->n_out; k++)
    if (n->out[k].present && n->out[k].dtype != n->in[0].dtype)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output %u dtype differs", k);
  return TSR_PLUGIN_REASON_NONE;
}

typedef struct split_job {
  const uint8_t *src;
  cpu_tensor *out;
  uint32_t n_out;
  const int64_t *split;
  size_t inner;     /* bytes per unit of the split axis */
  size_t row_bytes; /* bytes per outer row of the input */
} split_job;

static void split_rows(void *arg, size_t begin, size_t end) {
  const split_job *j = arg;
  for (size_t o = begin; o < end; o++) {
    const uint8_t *src = j->src + o * j->row_bytes;
    for (uint32_t k = 0; k < j->n_out; k++) {
      size_t c = (size_t)j->split[k] * j->inner;
      if (j->out[k].present && c) memcpy((uint8_t *)j->out[k].data + o * c, src, c);
      src += c;
    }
  }
}

static int run_split(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 0)) return -1;
  if (n->n_out == 0) return cpu_fail(ctx, "the node has no outputs");
  int64_t r = in[0].rank, axis = cpu_attr_int(n, "axis", 0);
  if (r == 0) return cpu_fail(ctx, "the input must have rank >= 1");
  if (run_axis(ctx, &axis, r, "axis")) return -1;
  int64_t dim = in[0].dims[axis];
  int64_t *split = malloc(n->n_out * sizeof *split);
  if (!split) return cpu_fail(ctx, "out of memory");
  size_t ns = 0;
  bool given = false;
  int rc = -1;
  const cpu_tensor *split_in = (n->opset >= 13 || n->opset < 2) && has_in(n, in, 1) ? &in[1] : NULL;
  if (split_in) {
    given = true;
    if (read_int_list(ctx, split_in, "split", split, n->n_out, &ns)) goto done;
  } else if (n->opset < 13) {
    const int64_t *a;
    size_t len = cpu_attr_ints(n, "split", &a);
    if (a) {
      given = true;
      if (len > n->n_out) {
        cpu_fail(ctx, "split has %zu entries for %u outputs", len, n->n_out);
        goto done;
      }
      memcpy(split, a, len * sizeof *split);
      ns = len;
    }
  }
  if (given) {
    if (ns != n->n_out) {
      cpu_fail(ctx, "split has %zu entries for %u outputs", ns, n->n_out);
      goto done;
    }
    int64_t sum = 0;
    for (size_t k = 0; k < ns; k++) {
      if (split[k] < 0 || split[k] > dim) {
        cpu_fail(ctx, "split entry %zu is %lld", k, (long long)split[k]);
        goto done;
      }
      sum += split[k];
    }
    if (sum != dim) {
      cpu_fail(ctx, "split sums to %lld but axis %lld has size %lld", (long long)sum,
               (long long)axis, (long long)dim);
      goto done;
    }
  } else {
    if (dim % n->n_out) {
      cpu_fail(ctx, "axis %lld of size %lld does not split into %u equal parts", (long long)axis,
               (long long)dim, n->n_out);
      goto done;
    }
    for (uint32_t k = 0; k < n->n_out; k++) split[k] = dim / n->n_out;
  }
  size_t es = cpu_dtype_size(in[0].dtype);
  int64_t dims[SHP_MAX_RANK];
  memcpy(dims, in[0].dims, (size_t)r * sizeof *dims);
  for (uint32_t k = 0; k < n->n_out; k++) {
    if (!out[k].present) continue;
    char what[32];
    snprintf(what, sizeof what, "output %u", k);
    dims[axis] = split[k];
    if (same_dtype(ctx, &in[0], &out[k], what) || expect_dims(ctx, &out[k], what, (size_t)r, dims))
      goto done;
  }
  if (in[0].count) {
    size_t inner = prod(in[0].dims, (size_t)axis + 1, (size_t)r) * es;
    split_job j = {in[0].data, out, n->n_out, split, inner, (size_t)dim * inner};
    size_t rows = prod(in[0].dims, 0, (size_t)axis);
    cpu_parallel_for(ctx, rows, j.row_bytes >= PAR_BYTES ? 1 : PAR_BYTES / j.row_bytes,
                     split_rows, &j);
  }
  rc = 0;
done:
  free(split);
  return rc;
}

/* ---- Slice --------------------------------------------------------------------------------- */

static tsr_plugin_reason check_slice(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  if (n->opset >= 10) {
    if (!has_in(n, n->in, 1) || !has_in(n, n->in, 2))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "starts and ends are required");
    for (uint32_t k = 1; k <= 4; k++)
      if ((r = check_int_input(n, k, "a slice parameter", msg, size))) return r;
  } else if (!cpu_has_attr(n, "starts") || !cpu_has_attr(n, "ends")) {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "starts and ends are required");
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* Reads Slice's parameter list from the attribute (opset < 10) or an input. */
static int slice_param(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, uint32_t k,
                       const char *name, int64_t *dst, size_t *count, bool *given) {
  *given = false;
  *count = 0;
  if (n->opset >= 10) {
    if (!has_in(n, in, k)) return 0;
    *given = true;
    return read_int_list(ctx, &in[k], name, dst, SHP_MAX_RANK, count);
  }
  const int64_t *a;
  size_t len = cpu_attr_ints(n, name, &a);
  if (!a) return 0;
  if (len > SHP_MAX_RANK) return cpu_fail(ctx, "%s has %zu entries", name, len);
  memcpy(dst, a, len * sizeof *dst);
  *count = len;
  *given = true;
  return 0;
}

static int run_slice(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  int64_t starts[SHP_MAX_RANK], ends[SHP_MAX_RANK], axes[SHP_MAX_RANK], steps[SHP_MAX_RANK];
  size_t ns, ne, na, nst;
  bool gs, ge, ga, gst;
  if (slice_param(ctx, n, in, 1, "starts", starts, &ns, &gs) ||
      slice_param(ctx, n, in, 2, "ends", ends, &ne, &ge) ||
      slice_param(ctx, n, in, 3, "axes", axes, &na, &ga))
    return -1;
  nst = 0;
  gst = false;
  if (n->opset >= 10 && slice_param(ctx, n, in, 4, "steps", steps, &nst, &gst)) return -1;
  if (!gs || !ge) return cpu_fail(ctx, "starts and ends are required");
  if (ns != ne) return cpu_fail(ctx, "starts has %zu entries but ends has %zu", ns, ne);
  if (ga && na != ns) return cpu_fail(ctx, "axes has %zu entries but starts has %zu", na, ns);
  if (gst && nst != ns) return cpu_fail(ctx, "steps has %zu entries but starts has %zu", nst, ns);
  int64_t r = in[0].rank;
  if (!ga && ns > (size_t)r)
    return cpu_fail(ctx, "starts has %zu entries for rank %lld", ns, (long long)r);
  /* Per axis: first index, step, count. Untouched axes keep everything. */
  int64_t first[SHP_MAX_RANK], step[SHP_MAX_RANK], cnt[SHP_MAX_RANK];
  bool seen[SHP_MAX_RANK] = {false};
  for (int64_t i = 0; i < r; i++) {
    first[i] = 0;
    step[i] = 1;
    cnt[i] = in[0].dims[i];
  }
  for (size_t i = 0; i < ns; i++) {
    int64_t ax = ga ? axes[i] : (int64_t)i;
    if (run_axis(ctx, &ax, r, "axis")) return -1;
    if (seen[ax]) return cpu_fail(ctx, "axis %lld appears twice", (long long)ax);
    seen[ax] = true;
    int64_t d = in[0].dims[ax], s = starts[i], e = ends[i], st = gst ? steps[i] : 1;
    if (st == 0) return cpu_fail(ctx, "step %zu is 0", i);
    if (s < 0) s += d;
    if (e < 0) e += d;
    uint64_t c = 0;
    if (st > 0) {
      s = s < 0 ? 0 : s > d ? d : s;
      e = e < 0 ? 0 : e > d ? d : e;
      if (e > s) c = (uint64_t)(e - s - 1) / (uint64_t)st + 1;
    } else {
      s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
      e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
      if (s > e) c = (uint64_t)(s - e - 1) / ((uint64_t)0 - (uint64_t)st) + 1;
    }
    first[ax] = c ? s : 0;
    step[ax] = c > 1 ? st : 1; /* a single element needs no step (and st may be huge) */
    cnt[ax] = (int64_t)c;
  }
  if (expect_dims(ctx, &out[0], "the output", (size_t)r, cnt)) return -1;
  if (out[0].count == 0) return 0;
  int64_t strides[SHP_MAX_RANK];
  row_strides(in[0].dims, (size_t)r, strides);
  view v = {.rank = (size_t)r};
  int64_t base = 0;
  for (int64_t i = 0; i < r; i++) {
    v.dims[i] = cnt[i];
    v.stride[i] = strides[i] * step[i];
    base += first[i] * strides[i];
  }
  size_t es = cpu_dtype_size(in[0].dtype);
  view_copy(ctx, &v, (const uint8_t *)in[0].data + (size_t)base * es, out[0].data, es);
  return 0;
}

/* ---- Gather, GatherElements, GatherND ----------------------------------------------------- */

/* Validates every index against `limit` (negative ones wrap once) and returns them as int64 in
 * a new array the caller frees; NULL after cpu_fail(). */
static int64_t *load_indices(cpu_ctx *ctx, const cpu_tensor *t, int64_t limit,
                             const char *axis_what) {
  if (!is_int_dtype(t->dtype)) {
    cpu_fail(ctx, "indices have dtype %s, not an integer", cpu_dtype_name(t->dtype));
    return NULL;
  }
  int64_t *idx = malloc((t->count ? t->count : 1) * sizeof *idx);
  if (!idx) {
    cpu_fail(ctx, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < t->count; i++) {
    int64_t v = cpu_read_int(t, i), w = v < 0 ? v + limit : v;
    if (t->dtype == TSR_DTYPE_UINT64 && v < 0) w = -1; /* above INT64_MAX */
    if (w < 0 || w >= limit) {
      cpu_fail(ctx, "index %lld at position %zu is out of range for %s of size %lld",
               (long long)v, i, axis_what, (long long)limit);
      free(idx);
      return NULL;
    }
    idx[i] = w;
  }
  return idx;
}

static tsr_plugin_reason check_gather(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 2, msg, size);
  if (r) return r;
  if ((r = check_int_input(n, 1, "indices", msg, size))) return r;
  if (n->n_out < 1 || n->out[0].dtype != n->in[0].dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype differs from data");
  return TSR_PLUGIN_REASON_NONE;
}

typedef struct gather_job {
  const uint8_t *src;
  uint8_t *dst;
  const int64_t *idx;
  size_t n_idx, axis_dim, block; /* block: bytes of one slice below the axis */
} gather_job;

static void gather_units(void *arg, size_t begin, size_t end) {
  const gather_job *j = arg;
  for (size_t u = begin; u < end; u++) {
    size_t o = u / j->n_idx, i = u % j->n_idx;
    memcpy(j->dst + u * j->block, j->src + (o * j->axis_dim + (size_t)j->idx[i]) * j->block,
           j->block);
  }
}

static int run_gather(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  if (need_io(ctx, n, in, 2, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  const cpu_tensor *data = &in[0], *ind = &in[1];
  int64_t r = data->rank, q = ind->rank, axis = cpu_attr_int(n, "axis", 0);
  if (r == 0) return cpu_fail(ctx, "data must have rank >= 1");
  if (run_axis(ctx, &axis, r, "axis")) return -1;
  if (r - 1 + q > SHP_MAX_RANK) return cpu_fail(ctx, "the output rank is too large");
  int64_t dims[SHP_MAX_RANK];
  size_t nd = 0;
  for (int64_t i = 0; i < axis; i++) dims[nd++] = data->dims[i];
  for (int64_t i = 0; i < q; i++) dims[nd++] = ind->dims[i];
  for (int64_t i = axis + 1; i < r; i++) dims[nd++] = data->dims[i];
  if (expect_dims(ctx, &out[0], "the output", nd, dims)) return -1;
  if (out[0].count == 0) return 0;
  char what[48];
  snprintf(what, sizeof what, "axis %lld", (long long)axis);
  int64_t *idx = load_indices(ctx, ind, data->dims[axis], what);
  if (!idx) return -1;
  size_t es = cpu_dtype_size(data->dtype);
  gather_job j = {data->data, out[0].data, idx, ind->count, (size_t)data->dims[axis],
                  prod(data->dims, (size_t)axis + 1, (size_t)r) * es};
  size_t units = prod(data->dims, 0, (size_t)axis) * ind->count;
  cpu_parallel_for(ctx, units, j.block >= PAR_BYTES ? 1 : PAR_BYTES / j.block, gather_units, &j);
  free(idx);
  return 0;
}

/* GatherElements and ScatterElements address data through an index tensor of the same rank:
 * element p of the index tensor names data[p with p[axis] replaced by idx[p]]. */
static int check_elements_shapes(cpu_ctx *ctx, const cpu_tensor *data, const cpu_tensor *ind,
                                 int64_t axis) {
  if (ind->rank != data->rank)
    return cpu_fail(ctx, "indices have rank %u but data has rank %u", ind->rank, data->rank);
  for (uint32_t i = 0; i < data->rank; i++)
    if ((int64_t)i != axis && ind->dims[i] > data->dims[i])
      return cpu_fail(ctx, "indices have size %lld on axis %u but data has %lld",
                      (long long)ind->dims[i], i, (long long)data->dims[i]);
  return 0;
}

/* The data offset (in elements) of each index element; parallel, no failures. */
typedef struct elem_job {
  const cpu_tensor *ind;
  const int64_t *idx;
  int64_t *offs;
  const int64_t *dstrides;
  int64_t axis;
} elem_job;

static void elem_offsets(void *arg, size_t begin, size_t end) {
  const elem_job *j = arg;
  size_t r = j->ind->rank;
  int64_t pos[SHP_MAX_RANK];
  size_t rem = begin;
  for (size_t k = r; k-- > 0;) {
    pos[k] = (int64_t)(rem % (size_t)j->ind->dims[k]);
    rem /= (size_t)j->ind->dims[k];
  }
  for (size_t e = begin; e < end; e++) {
    int64_t off = 0;
    for (size_t k = 0; k < r; k++)
      off += ((int64_t)k == j->axis ? j->idx[e] : pos[k]) * j->dstrides[k];
    j->offs[e] = off;
    for (size_t k = r; k-- > 0;) {
      if (++pos[k] < j->ind->dims[k]) break;
      pos[k] = 0;
    }
  }
}

/* Returns the data offsets for every index element, or NULL after cpu_fail(). */
static int64_t *element_offsets(cpu_ctx *ctx, const cpu_tensor *data, const cpu_tensor *ind,
                                int64_t axis) {
  char what[48];
  snprintf(what, sizeof what, "axis %lld", (long long)axis);
  int64_t *idx = load_indices(ctx, ind, data->dims[axis], what);
  if (!idx) return NULL;
  int64_t *offs = malloc((ind->count ? ind->count : 1) * sizeof *offs);
  if (!offs) {
    free(idx);
    cpu_fail(ctx, "out of memory");
    return NULL;
  }
  int64_t dstrides[SHP_MAX_RANK];
  row_strides(data->dims, data->rank, dstrides);
  elem_job j = {ind, idx, offs, dstrides, axis};
  cpu_parallel_for(ctx, ind->count, 4096, elem_offsets, &j);
  free(idx);
  return offs;
}

typedef struct elem_copy_job {
  const uint8_t *src;
  uint8_t *dst;
  const int64_t *offs;
  size_t es;
} elem_copy_job;

static void elem_gather(void *arg, size_t begin, size_t end) {
  const elem_copy_job *j = arg;
  for (size_t e = begin; e < end; e++)
    memcpy(j->dst + e * j->es, j->src + (size_t)j->offs[e] * j->es, j->es);
}

static int run_gather_elements(cpu_ctx *ctx, const cpu_node *n, void *state,
                               const cpu_tensor *in, cpu_tensor *out) {
  if (need_io(ctx, n, in, 2, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  const cpu_tensor *data = &in[0], *ind = &in[1];
  int64_t axis = cpu_attr_int(n, "axis", 0);
  if (data->rank == 0) return cpu_fail(ctx, "data must have rank >= 1");
  if (run_axis(ctx, &axis, data->rank, "axis")) return -1;
  if (check_elements_shapes(ctx, data, ind, axis)) return -1;
  if (expect_dims(ctx, &out[0], "the output", ind->rank, ind->dims)) return -1;
  if (out[0].count == 0) return 0;
  int64_t *offs = element_offsets(ctx, data, ind, axis);
  if (!offs) return -1;
  elem_copy_job j = {data->data, out[0].data, offs, cpu_dtype_size(data->dtype)};
  cpu_parallel_for(ctx, ind->count, 4096, elem_gather, &j);
  free(offs);
  return 0;
}

/* GatherND and ScatterND: each index tuple (the last axis of indices, m long) names a slice
 * of data below the batch axes. Returns the element offset of each tuple's slice, or NULL after
 * cpu_fail(). `batch` is batch_dims (0 for ScatterND). */
static int64_t *nd_offsets(cpu_ctx *ctx, const cpu_tensor *data, const cpu_tensor *ind,
                           int64_t batch, size_t *n_tuples, size_t *slice) {
  int64_t q = ind->rank, r = data->rank, m = q ? ind->dims[q - 1] : 0;
  if (!is_int_dtype(ind->dtype)) {
    cpu_fail(ctx, "indices have dtype %s, not an integer", cpu_dtype_name(ind->dtype));
    return NULL;
  }
  if (q < 1) {
    cpu_fail(ctx, "indices must have rank >= 1");
    return NULL;
  }
  if (m > r - batch) {
    cpu_fail(ctx, "index tuples have %lld entries but data has only %lld axes to index",
             (long long)m, (long long)(r - batch));
    return NULL;
  }
  size_t nt = prod(ind->dims, 0, (size_t)q - 1);
  size_t per_batch = prod(ind->dims, (size_t)batch, (size_t)q - 1);
  size_t batch_stride = prod(data->dims, (size_t)batch, (size_t)r);
  *slice = prod(data->dims, (size_t)(batch + m), (size_t)r);
  *n_tuples = nt;
  int64_t *offs = malloc((nt ? nt : 1) * sizeof *offs);
  if (!offs) {
    cpu_fail(ctx, "out of memory");
    return NULL;
  }
  int64_t strides[SHP_MAX_RANK]; /* of data's indexed axes, in elements */
  for (int64_t k = m; k-- > 0;)
    strides[k] = k == m - 1 ? (int64_t)*slice : strides[k + 1] * data->dims[batch + k + 1];
  for (size_t t = 0; t < nt; t++) {
    int64_t off = (int64_t)((per_batch ? t / per_batch : 0) * batch_stride);
    for (int64_t k = 0; k < m; k++) {
      size_t pos = t * (size_t)m + (size_t)k;
      int64_t v = cpu_read_int(ind, pos), lim = data->dims[batch + k];
      int64_t w = v < 0 ? v + lim : v;
      if (w < 0 || w >= lim || (ind->dtype == TSR_DTYPE_UINT64 && v < 0)) {
        cpu_fail(ctx, "index %lld at position %zu is out of range for axis %lld of size %lld",
                 (long long)v, pos, (long long)(batch + k), (long long)lim);
        free(offs);
        return NULL;
      }
      off += w * strides[k];
    }
    offs[t] = off;
  }
  return offs;
}

typedef struct slice_copy_job {
  const uint8_t *src;
  uint8_t *dst;
  const int64_t *offs;
  size_t block; /* bytes */
  size_t es;
} slice_copy_job;

static void nd_gather(void *arg, size_t begin, size_t end) {
  const slice_copy_job *j = arg;
  for (size_t t = begin; t < end; t++)
    memcpy(j->dst + t * j->block, j->src + (size_t)j->offs[t] * j->es, j->block);
}

static int run_gather_nd(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                         cpu_tensor *out) {
  if (need_io(ctx, n, in, 2, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  const cpu_tensor *data = &in[0], *ind = &in[1];
  int64_t b = n->opset >= 12 ? cpu_attr_int(n, "batch_dims", 0) : 0;
  int64_t q = ind->rank, r = data->rank;
  if (q < 1 || r < 1) return cpu_fail(ctx, "data and indices must have rank >= 1");
  if (b < 0 || b >= q || b >= r)
    return cpu_fail(ctx, "batch_dims %lld must be below both ranks (%lld, %lld)", (long long)b,
                    (long long)r, (long long)q);
  for (int64_t i = 0; i < b; i++)
    if (ind->dims[i] != data->dims[i])
      return cpu_fail(ctx, "batch axis %lld has size %lld in indices but %lld in data",
                      (long long)i, (long long)ind->dims[i], (long long)data->dims[i]);
  int64_t m = ind->dims[q - 1];
  if (m > r - b)
    return cpu_fail(ctx, "index tuples have %lld entries but data has only %lld axes to index",
                    (long long)m, (long long)(r - b));
  int64_t dims[SHP_MAX_RANK];
  size_t nd = 0;
  for (int64_t i = 0; i < q - 1; i++) dims[nd++] = ind->dims[i];
  for (int64_t i = b + m; i < r; i++) {
    if (nd >= SHP_MAX_RANK) return cpu_fail(ctx, "the output rank is too large");
    dims[nd++] = data->dims[i];
  }
  if (expect_dims(ctx, &out[0], "the output", nd, dims)) return -1;
  if (out[0].count == 0) return 0;
  size_t nt, slice;
  int64_t *offs = nd_offsets(ctx, data, ind, b, &nt, &slice);
  if (!offs) return -1;
  size_t es = cpu_dtype_size(data->dtype);
  slice_copy_job j = {data->data, out[0].data, offs, slice * es, es};
  cpu_parallel_for(ctx, nt, j.block >= PAR_BYTES ? 1 : PAR_BYTES / j.block, nd_gather, &j);
  free(offs);
  return 0;
}

/* ---- ScatterElements, ScatterND ----------------------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static int parse_reduction(const char *s) {
  if (!strcmp(s, "none")) return RED_NONE;
  if (!strcmp(s, "add")) return RED_ADD;
  if (!strcmp(s, "mul")) return RED_MUL;
  if (!strcmp(s, "max")) return RED_MAX;
  if (!strcmp(s, "min")) return RED_MIN;
  return -1;
}

static float bf16_to_f32(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Round to nearest even, NaN stays NaN (quietened), as helpers.c does for cpu_write_f64. */
static uint16_t f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* dst = dst (op) src for one element. Integer add and mul wrap around. */
static void reduce_elem(uint32_t dt, uint8_t *dst, const uint8_t *src, int red) {
#define RED_FLOAT(a, b)                                                                            \
  (red == RED_ADD   ? a + b                                                                        \
   : red == RED_MUL ? a * b                                                                        \
   : red == RED_MAX ? (a > b ? a : b)                                                              \
                    : (a < b ? a : b))
#define RED_INT(T, U)                                                                            \
  {                                                                                              \
    T a, b;                                                                                      \
    memcpy(&a, dst, sizeof a);                                                                   \
    memcpy(&b, src, sizeof b);                                                                   \
    U ua = (U)a, ub = (U)b;                                                                      \
    a = red == RED_ADD ? (T)(U)(ua + ub) : red == RED_MUL ? (T)(U)(ua * ub)                      \
      : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b);                                      \
    memcpy(dst, &a, sizeof a);                                                                   \
    break;                                                                                       \
  }
  switch (dt) {
  case TSR_DTYPE_FLOAT32: {
    float a, b;
    memcpy(&a, dst, 4);
    memcpy(&b, src, 4);
    a = RED_FLOAT(a, b);
    memcpy(dst, &a, 4);
    break;
  }
  case TSR_DTYPE_FLOAT64: {
    double a, b;
    memcpy(&a, dst, 8);
    memcpy(&b, src, 8);
    a = RED_FLOAT(a, b);
    memcpy(dst, &a, 8);
    break;
  }
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16: {
    uint16_t ha, hb;
    memcpy(&ha, dst, 2);
    memcpy(&hb, src, 2);
    bool h = dt == TSR_DTYPE_FLOAT16;
    float a = h ? cpu_half_to_float(ha) : bf16_to_f32(ha);
    float b = h ? cpu_half_to_float(hb) : bf16_to_f32(hb);
    a = RED_FLOAT(a, b);
    ha = h ? cpu_float_to_half(a) : f32_to_bf16(a);
    memcpy(dst, &ha, 2);
    break;
  }
  case TSR_DTYPE_BOOL: /* add is or, mul is and, as for booleans in numpy */
    *dst = (red == RED_ADD || red == RED_MAX)   ? (*dst || *src)
           : (red == RED_MUL || red == RED_MIN) ? (*dst && *src)
                                                : *src;
    break;
  case TSR_DTYPE_INT8: RED_INT(int8_t, uint8_t)
  case TSR_DTYPE_UINT8: RED_INT(uint8_t, uint32_t)
  case TSR_DTYPE_INT16: RED_INT(int16_t, uint16_t)
  case TSR_DTYPE_UINT16: RED_INT(uint16_t, uint32_t)
  case TSR_DTYPE_INT32: RED_INT(int32_t, uint32_t)
  case TSR_DTYPE_UINT32: RED_INT(uint32_t, uint32_t)
  case TSR_DTYPE_INT64: RED_INT(int64_t, uint64_t)
  case TSR_DTYPE_UINT64: RED_INT(uint64_t, uint64_t)
  default: break;
  }
#undef RED_FLOAT
#undef RED_INT
}

static tsr_plugin_reason check_scatter(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 3, msg, size);
  if (r) return r;
  if ((r = check_int_input(n, 1, "indices", msg, size))) return r;
  if (n->in[2].dtype != n->in[0].dtype || n->n_out < 1 || n->out[0].dtype != n->in[0].dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "updates/output dtype differs");
  const char *red = cpu_attr_string(n, "reduction", "none");
  int rd = parse_reduction(red);
  if (rd < 0 || (rd != RED_NONE && n->opset < 16) || (rd >= RED_MAX && n->opset < 18))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "reduction %s", red);
  return TSR_PLUGIN_REASON_NONE;
}

static int scatter_reduction(cpu_ctx *ctx, const cpu_node *n) {
  const char *red = n->opset >= 16 ? cpu_attr_string(n, "reduction", "none") : "none";
  int rd = parse_reduction(red);
  if (rd < 0) return cpu_fail(ctx, "unknown reduction %s", red);
  return rd;
}

/* Applies updates one by one in index order, so duplicates with a reduction accumulate in
 * that order; without a reduction the last write wins. */
static void scatter_apply(uint32_t dt, uint8_t *dst, const uint8_t *upd, const int64_t *offs,
                          size_t n_units, size_t unit_elems, size_t es, int red) {
  for (size_t u = 0; u < n_units; u++) {
    uint8_t *d = dst + (size_t)offs[u] * es;
    const uint8_t *s = upd + u * unit_elems * es;
    if (red == RED_NONE) {
      memcpy(d, s, unit_elems * es);
    } else {
      for (size_t e = 0; e < unit_elems; e++) reduce_elem(dt, d + e * es, s + e * es, red);
    }
  }
}

static int run_scatter_elements(cpu_ctx *ctx, const cpu_node *n, void *state,
                                const cpu_tensor *in, cpu_tensor *out) {
  if (need_io(ctx, n, in, 3, out, 1)) return -1;
  const cpu_tensor *data = &in[0], *ind = &in[1], *upd = &in[2];
  if (same_dtype(ctx, data, &out[0], "the output") || same_dtype(ctx, data, upd, "updates"))
    return -1;
  int red = scatter_reduction(ctx, n);
  if (red < 0) return -1;
  int64_t axis = cpu_attr_int(n, "axis", 0);
  if (data->rank == 0) return cpu_fail(ctx, "data must have rank >= 1");
  if (run_axis(ctx, &axis, data->rank, "axis")) return -1;
  if (check_elements_shapes(ctx, data, ind, axis)) return -1;
  if (expect_dims(ctx, upd, "updates", ind->rank, ind->dims)) return -1;
  if (expect_dims(ctx, &out[0], "the output", data->rank, data->dims)) return -1;
  par_memcpy(ctx, out[0].data, data->data, data->nbytes);
  if (ind->count == 0) return 0;
  int64_t *offs = element_offsets(ctx, data, ind, axis);
  if (!offs) return -1;
  scatter_apply(data->dtype, out[0].data, upd->data, offs, ind->count, 1,
                cpu_dtype_size(data->dtype), red);
  free(offs);
  return 0;
}

static int run_scatter_nd(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                          cpu_tensor *out) {
  if (need_io(ctx, n, in, 3, out, 1)) return -1;
  const cpu_tensor *data = &in[0], *ind = &in[1], *upd = &in[2];
  if (same_dtype(ctx, data, &out[0], "the output") || same_dtype(ctx, data, upd, "updates"))
    return -1;
  int red = scatter_reduction(ctx, n);
  if (red < 0) return -1;
  int64_t q = ind->rank, r = data->rank;
  if (q < 1 || r < 1) return cpu_fail(ctx, "data and indices must have rank >= 1");
  int64_t m = ind->dims[q - 1];
  if (m > r)
    return cpu_fail(ctx, "index tuples have %lld entries but data has rank %lld", (long long)m,
                    (long long)r);
  int64_t dims[2 * SHP_MAX_RANK];
  size_t nd = 0;
  for (int64_t i = 0; i < q - 1; i++) dims[nd++] = ind->dims[i];
  for (int64_t i = m; i < r; i++) dims[nd++] = data->dims[i];
  if (nd > SHP_MAX_RANK) return cpu_fail(ctx, "updates would have rank %zu", nd);
  if (expect_dims(ctx, upd, "updates", nd, dims)) return -1;
  if (expect_dims(ctx, &out[0], "the output", data->rank, data->dims)) return -1;
  par_memcpy(ctx, out[0].data, data->data, data->nbytes);
  if (upd->count == 0) return 0;
  size_t nt, slice;
  int64_t *offs = nd_offsets(ctx, data, ind, 0, &nt, &slice);
  if (!offs) return -1;
  scatter_apply(data->dtype, out[0].data, upd->data, offs, nt, slice,
                cpu_dtype_size(data->dtype), red);
  free(offs);
  return 0;
}

/* ---- Expand, Tile --------------------------------------------------------------------------- */

static tsr_plugin_reason check_expand_tile(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  if (!has_in(n, n->in, 1))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "input 1 is missing");
  return check_int_input(n, 1, !strcmp(n->op_type, "Tile") ? "repeats" : "shape", msg, size);
}

static int run_expand(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  if (need_io(ctx, n, in, 2, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  int64_t shape[SHP_MAX_RANK];
  size_t ns;
  if (read_int_list(ctx, &in[1], "shape", shape, SHP_MAX_RANK, &ns)) return -1;
  size_t r = in[0].rank, R = ns > r ? ns : r;
  int64_t dims[SHP_MAX_RANK], strides[SHP_MAX_RANK];
  row_strides(in[0].dims, r, strides);
  view v = {.rank = R};
  for (size_t i = 0; i < R; i++) {
    /* Broadcast aligns trailing axes. */
    int64_t a = i + r >= R ? in[0].dims[i + r - R] : 1;
    int64_t b = i + ns >= R ? shape[i + ns - R] : 1;
    if (b < 0) return cpu_fail(ctx, "shape entry %zu is %lld", i + ns - R, (long long)b);
    if (a != b && a != 1 && b != 1)
      return cpu_fail(ctx, "input dimension %lld cannot broadcast to %lld on axis %zu",
                      (long long)a, (long long)b, i);
    dims[i] = a == 1 ? b : a;
    v.dims[i] = dims[i];
    v.stride[i] = (i + r >= R && a != 1) ? strides[i + r - R] : 0;
  }
  if (expect_dims(ctx, &out[0], "the output", R, dims)) return -1;
  if (out[0].count == 0) return 0;
  view_copy(ctx, &v, in[0].data, out[0].data, cpu_dtype_size(in[0].dtype));
  return 0;
}

static int run_tile(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  if (need_io(ctx, n, in, 2, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  int64_t rep[SHP_MAX_RANK];
  size_t nr, r = in[0].rank;
  if (read_int_list(ctx, &in[1], "repeats", rep, SHP_MAX_RANK, &nr)) return -1;
  if (nr != r) return cpu_fail(ctx, "repeats has %zu entries for rank %zu", nr, r);
  int64_t dims[SHP_MAX_RANK], strides[SHP_MAX_RANK];
  row_strides(in[0].dims, r, strides);
  /* Output axis k of size rep*d, row-major, is the pair of axes (rep, d) with the source
   * stride 0 on the repeat axis. */
  view v = {.rank = 2 * r};
  for (size_t i = 0; i < r; i++) {
    if (rep[i] < 0) return cpu_fail(ctx, "repeats entry %zu is %lld", i, (long long)rep[i]);
    dims[i] = in[0].dims[i] * rep[i];
    v.dims[2 * i] = rep[i];
    v.stride[2 * i] = 0;
    v.dims[2 * i + 1] = in[0].dims[i];
    v.stride[2 * i + 1] = strides[i];
  }
  if (expect_dims(ctx, &out[0], "the output", r, dims)) return -1;
  if (out[0].count == 0) return 0;
  view_copy(ctx, &v, in[0].data, out[0].data, cpu_dtype_size(in[0].dtype));
  return 0;
}

/* ---- Pad ------------------------------------------------------------------------------------ */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

static int parse_pad_mode(const char *s) {
  if (!strcmp(s, "constant")) return PAD_CONSTANT;
  if (!strcmp(s, "reflect")) return PAD_REFLECT;
  if (!strcmp(s, "edge")) return PAD_EDGE;
  return -1;
}

static tsr_plugin_reason check_pad(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  const char *mode = cpu_attr_string(n, "mode", "constant");
  if (parse_pad_mode(mode) < 0)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "mode %s", mode);
  if (n->opset >= 11) {
    if (!has_in(n, n->in, 1))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "pads input is missing");
    if ((r = check_int_input(n, 1, "pads", msg, size))) return r;
    if (has_in(n, n->in, 3))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "the axes input (opset 18)");
    if (has_in(n, n->in, 2) && n->in[2].dtype != n->in[0].dtype)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "constant_value dtype differs");
  } else if (!cpu_has_attr(n, "pads") && !cpu_has_attr(n, "paddings")) {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute pads is missing");
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* The source index of output index o on an axis of size d padded by `before`. */
static int64_t pad_source(int64_t o, int64_t before, int64_t d, int mode) {
  int64_t i = o - before;
  if (i >= 0 && i < d) return i;
  if (mode == PAD_CONSTANT) return -1;
  if (mode == PAD_EDGE || d == 1) return i < 0 ? 0 : d - 1;
  /* Reflect without repeating the edge, folding as often as needed (numpy's behaviour for
   * pads wider than the axis). */
  int64_t period = 2 * (d - 1);
  i %= period;
  if (i < 0) i += period;
  return i < d ? i : period - i;
}

static int run_pad(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  const char *mode_s = cpu_attr_string(n, "mode", "constant");
  int mode = parse_pad_mode(mode_s);
  if (mode < 0) return cpu_fail(ctx, "unknown mode %s", mode_s);
  size_t r = in[0].rank, es = cpu_dtype_size(in[0].dtype);
  int64_t pads[2 * SHP_MAX_RANK];
  size_t np = 0;
  uint8_t fill[8] = {0};
  if (n->opset >= 11) {
    if (!has_in(n, in, 1)) return cpu_fail(ctx, "input 1 (pads) is missing");
    if (has_in(n, in, 3)) return cpu_fail(ctx, "the axes input is not supported");
    if (read_int_list(ctx, &in[1], "pads", pads, 2 * SHP_MAX_RANK, &np)) return -1;
    if (has_in(n, in, 2) && in[2].count > 0) {
      if (same_dtype(ctx, &in[0], &in[2], "constant_value")) return -1;
      memcpy(fill, in[2].data, es);
    }
  } else {
    const int64_t *a;
    np = cpu_attr_ints(n, "pads", &a);
    if (!a) np = cpu_attr_ints(n, "paddings", &a); /* opset 1 */
    if (!a) return cpu_fail(ctx, "attribute pads is missing");
    if (np > 2 * SHP_MAX_RANK) return cpu_fail(ctx, "pads has %zu entries", np);
    memcpy(pads, a, np * sizeof *pads);
    cpu_tensor t = {.dtype = out[0].dtype, .data = fill, .count = 1};
    cpu_write_f64(&t, 0, cpu_attr_float(n, "value", 0.0f));
  }
  if (np != 2 * r) return cpu_fail(ctx, "pads has %zu entries for rank %zu", np, r);
  int64_t dims[SHP_MAX_RANK];
  for (size_t i = 0; i < r; i++) {
    dims[i] = in[0].dims[i] + pads[i] + pads[i + r];
    if (dims[i] < 0)
      return cpu_fail(ctx, "pads %lld and %lld remove more than axis %zu's %lld elements",
                      (long long)pads[i], (long long)pads[i + r], i, (long long)in[0].dims[i]);
    if (mode != PAD_CONSTANT && in[0].dims[i] == 0 && dims[i] > 0)
      return cpu_fail(ctx, "mode %s cannot pad the empty axis %zu", mode_s, i);
  }
  if (expect_dims(ctx, &out[0], "the output", r, dims)) return -1;
  if (out[0].count == 0) return 0;
  if (r == 0) {
    memcpy(out[0].data, in[0].data, es);
    return 0;
  }
  size_t total = 0;
  for (size_t i = 0; i < r; i++) total += (size_t)dims[i];
  int64_t *store = malloc((total + 3 * (size_t)dims[r - 1]) * sizeof *store);
  if (!store) return cpu_fail(ctx, "out of memory");
  int64_t *maps[SHP_MAX_RANK];
  int64_t *p = store;
  for (size_t i = 0; i < r; i++) {
    maps[i] = p;
    for (int64_t o = 0; o < dims[i]; o++) p[o] = pad_source(o, pads[i], in[0].dims[i], mode);
    p += dims[i];
  }
  /* Cut the last axis into runs of consecutive sources or of fill. */
  int64_t *runs = p;
  size_t n_runs = 0;
  const int64_t *last = maps[r - 1];
  for (int64_t o = 0; o < dims[r - 1];) {
    int64_t start = o, src = last[o];
    o++;
    while (o < dims[r - 1] &&
           ((src < 0 && last[o] < 0) || (src >= 0 && last[o] == src + (o - start))))
      o++;
    runs[3 * n_runs] = start;
    runs[3 * n_runs + 1] = o - start;
    runs[3 * n_runs + 2] = src;
    n_runs++;
  }
  int64_t strides[SHP_MAX_RANK];
  row_strides(in[0].dims, r, strides);
  map_job j = {r, dims, maps, strides, in[0].data, out[0].data, es, fill, runs, n_runs};
  size_t row_bytes = (size_t)dims[r - 1] * es;
  cpu_parallel_for(ctx, out[0].count / (size_t)dims[r - 1],
                   row_bytes >= PAR_BYTES ? 1 : PAR_BYTES / row_bytes, map_rows, &j);
  free(store);
  return 0;
}

/* ---- Shape, Size, ConstantOfShape, Range, EyeLike ------------------------------------------ */

static tsr_plugin_reason check_int64_out(const cpu_node *n, char *msg, size_t size) {
  if (n->n_in < 1 || n->n_out < 1 || !n->in[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "needs one input and one output");
  if (n->out[0].dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output must be int64");
  return TSR_PLUGIN_REASON_NONE;
}

static int run_shape(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  /* Only the input's shape matters: any dtype, strings included, is fine. */
  if (n->n_in < 1 || !in[0].present || n->n_out < 1 || !out[0].present)
    return cpu_fail(ctx, "needs one input and one output");
  if (out[0].dtype != TSR_DTYPE_INT64) return cpu_fail(ctx, "the output must be int64");
  int64_t r = in[0].rank, start = 0, end = r;
  if (n->opset >= 15) {
    start = cpu_attr_int(n, "start", 0);
    end = cpu_attr_int(n, "end", r);
  }
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < 0 ? 0 : end > r ? r : end;
  int64_t len = end > start ? end - start : 0;
  if (expect_dims(ctx, &out[0], "the output", 1, &len)) return -1;
  if (len) memcpy(out[0].data, in[0].dims + start, (size_t)len * sizeof(int64_t));
  return 0;
}

static int run_size(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  if (n->n_in < 1 || !in[0].present || n->n_out < 1 || !out[0].present)
    return cpu_fail(ctx, "needs one input and one output");
  if (out[0].dtype != TSR_DTYPE_INT64) return cpu_fail(ctx, "the output must be int64");
  if (out[0].count != 1) return cpu_fail(ctx, "the output must hold one element");
  int64_t v = 1;
  for (uint32_t i = 0; i < in[0].rank; i++) v *= in[0].dims[i];
  memcpy(out[0].data, &v, sizeof v);
  return 0;
}

/* The value attribute of ConstantOfShape: its dtype and element bytes. */
static bool cos_value(const cpu_node *n, uint32_t *dtype, const void **data, size_t *count) {
  tsr_plugin_attr a;
  if (!cpu_attr_tensor(n, "value", &a)) {
    static const float zero = 0.0f;
    *dtype = TSR_DTYPE_FLOAT32;
    *data = &zero;
    *count = 1;
    return true;
  }
  *dtype = a.t_dtype;
  *data = a.t_data;
  *count = 1;
  for (uint32_t i = 0; i < a.t_rank; i++) *count *= (size_t)a.t_dims[i];
  return false;
}

static tsr_plugin_reason check_constant_of_shape(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if ((r = check_int_input(n, 0, "shape", msg, size))) return r;
  uint32_t dt;
  const void *data;
  size_t count;
  cos_value(n, &dt, &data, &count);
  if (cpu_dtype_size(dt) == 0 || count != 1 || !data)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "value must be one element of a numeric dtype");
  if (n->n_out < 1 || n->out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype differs from value");
  return TSR_PLUGIN_REASON_NONE;
}

typedef struct fill_job {
  uint8_t *dst;
  const uint8_t *val;
  size_t es;
} fill_job;

static void fill_chunk(void *arg, size_t begin, size_t end) {
  const fill_job *j = arg;
  fill_elems(j->dst + begin * j->es, j->val, end - begin, j->es);
}

static void par_fill(cpu_ctx *ctx, void *dst, const void *val, size_t n, size_t es) {
  fill_job j = {dst, val, es};
  cpu_parallel_for(ctx, n, (1u << 18) / es, fill_chunk, &j);
}

static int run_constant_of_shape(cpu_ctx *ctx, const cpu_node *n, void *state,
                                 const cpu_tensor *in, cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  uint32_t dt;
  const void *val;
  size_t count;
  cos_value(n, &dt, &val, &count);
  if (cpu_dtype_size(dt) == 0 || count != 1 || !val)
    return cpu_fail(ctx, "value must be one element of a numeric dtype");
  if (out[0].dtype != dt)
    return cpu_fail(ctx, "the output has dtype %s but value has %s",
                    cpu_dtype_name(out[0].dtype), cpu_dtype_name(dt));
  int64_t dims[SHP_MAX_RANK];
  size_t nd;
  if (read_int_list(ctx, &in[0], "shape", dims, SHP_MAX_RANK, &nd)) return -1;
  for (size_t i = 0; i < nd; i++)
    if (dims[i] < 0) return cpu_fail(ctx, "shape entry %zu is %lld", i, (long long)dims[i]);
  if (expect_dims(ctx, &out[0], "the output", nd, dims)) return -1;
  par_fill(ctx, out[0].data, val, out[0].count, cpu_dtype_size(dt));
  return 0;
}

static tsr_plugin_reason check_range(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 3, msg, size);
  if (r) return r;
  uint32_t dt = n->in[0].dtype;
  if (n->in[1].dtype != dt || n->in[2].dtype != dt || n->n_out < 1 || n->out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "inputs and output differ in dtype");
  if (!is_float_dtype(dt) && (!is_int_dtype(dt) || dt == TSR_DTYPE_UINT64))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s", cpu_dtype_name(dt));
  return TSR_PLUGIN_REASON_NONE;
}

static int run_range(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  if (need_io(ctx, n, in, 3, out, 1)) return -1;
  for (int k = 0; k < 3; k++) {
    if (same_dtype(ctx, &in[0], &in[k], "an input") ) return -1;
    if (in[k].count != 1) return cpu_fail(ctx, "input %d must hold one value", k);
  }
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  cpu_tensor *o = &out[0];
  int64_t len;
  if (is_float_dtype(in[0].dtype)) {
    double start = cpu_read_f64(&in[0], 0), limit = cpu_read_f64(&in[1], 0);
    double delta = cpu_read_f64(&in[2], 0);
    if (delta == 0 || !isfinite(start) || !isfinite(limit) || !isfinite(delta))
      return cpu_fail(ctx, "start, limit and delta must be finite and delta non-zero");
    double c = ceil((limit - start) / delta);
    if (c > 9e15) return cpu_fail(ctx, "the range has too many elements");
    len = c > 0 ? (int64_t)c : 0;
    if (expect_dims(ctx, o, "the output", 1, &len)) return -1;
    for (int64_t i = 0; i < len; i++) cpu_write_f64(o, (size_t)i, start + (double)i * delta);
    return 0;
  }
  if (!is_int_dtype(in[0].dtype) || in[0].dtype == TSR_DTYPE_UINT64)
    return cpu_fail(ctx, "dtype %s is not supported", cpu_dtype_name(in[0].dtype));
  /* Integer ranges are exact: count with unsigned differences, which cannot overflow. */
  int64_t start = cpu_read_int(&in[0], 0), limit = cpu_read_int(&in[1], 0);
  int64_t delta = cpu_read_int(&in[2], 0);
  if (delta == 0) return cpu_fail(ctx, "delta is 0");
  uint64_t count = 0;
  if (delta > 0 && limit > start)
    count = ((uint64_t)limit - (uint64_t)start - 1) / (uint64_t)delta + 1;
  else if (delta < 0 && limit < start)
    count = ((uint64_t)start - (uint64_t)limit - 1) / ((uint64_t)0 - (uint64_t)delta) + 1;
  len = (int64_t)count;
  if (count > (uint64_t)INT64_MAX || expect_dims(ctx, o, "the output", 1, &len)) return -1;
  uint64_t v = (uint64_t)start;
  for (uint64_t i = 0; i < count; i++, v += (uint64_t)delta) {
    uint64_t w = v; /* little-endian: the low bytes are the narrower integer */
    memcpy((uint8_t *)o->data + i * cpu_dtype_size(o->dtype), &w, cpu_dtype_size(o->dtype));
  }
  return 0;
}

static tsr_plugin_reason check_eye_like(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if (n->in[0].rank != 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input must be 2-D");
  int64_t dt = cpu_attr_int(n, "dtype", n->in[0].dtype);
  if (n->n_out < 1 || n->out[0].dtype != (uint32_t)dt || cpu_dtype_size((uint32_t)dt) == 0)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype does not match dtype");
  return TSR_PLUGIN_REASON_NONE;
}

static int run_eye_like(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                        cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  if (in[0].rank != 2) return cpu_fail(ctx, "input must be 2-D, got rank %u", in[0].rank);
  int64_t dt = cpu_attr_int(n, "dtype", in[0].dtype);
  if (out[0].dtype != (uint32_t)dt)
    return cpu_fail(ctx, "the output has dtype %s but the dtype attribute says %s",
                    cpu_dtype_name(out[0].dtype), cpu_dtype_name((uint32_t)dt));
  if (expect_dims(ctx, &out[0], "the output", 2, in[0].dims)) return -1;
  int64_t rows = in[0].dims[0], cols = in[0].dims[1], k = cpu_attr_int(n, "k", 0);
  memset(out[0].data, 0, out[0].nbytes);
  if (k >= cols || k <= -rows) return 0;
  for (int64_t i = k < 0 ? -k : 0; i < rows && i + k < cols; i++)
    cpu_write_f64(&out[0], (size_t)(i * cols + i + k), 1.0);
  return 0;
}

/* ---- OneHot, Trilu ------------------------------------------------------------------------- */

static tsr_plugin_reason check_one_hot(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 3, msg, size);
  if (r) return r;
  for (int k = 0; k < 2; k++)
    if (!is_int_dtype(n->in[k].dtype) && !is_float_dtype(n->in[k].dtype))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "input %d must be numeric", k);
  if (n->n_out < 1 || n->out[0].dtype != n->in[2].dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype differs from values");
  return TSR_PLUGIN_REASON_NONE;
}

/* Reads a numeric element as an integer, truncating floats; false for NaN or values that do
 * not fit. */
static bool read_index(const cpu_tensor *t, size_t i, int64_t *v) {
  if (is_float_dtype(t->dtype)) {
    double d = cpu_read_f64(t, i);
    if (!(d > -9.2e18 && d < 9.2e18)) return false;
    *v = (int64_t)d;
    return true;
  }
  *v = cpu_read_int(t, i);
  return !(t->dtype == TSR_DTYPE_UINT64 && *v < 0);
}

static int run_one_hot(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  if (need_io(ctx, n, in, 3, out, 1)) return -1;
  const cpu_tensor *ind = &in[0], *vals = &in[2];
  if (same_dtype(ctx, vals, &out[0], "the output")) return -1;
  if (vals->count != 2) return cpu_fail(ctx, "values must hold 2 elements, got %zu", vals->count);
  int64_t depth;
  if (in[1].count != 1 || !read_index(&in[1], 0, &depth) || depth < 0)
    return cpu_fail(ctx, "depth must be one non-negative value");
  int64_t r = ind->rank + 1, axis = cpu_attr_int(n, "axis", -1);
  if (r > SHP_MAX_RANK) return cpu_fail(ctx, "the output rank is too large");
  if (run_axis(ctx, &axis, r, "axis")) return -1;
  int64_t dims[SHP_MAX_RANK];
  for (int64_t i = 0, k = 0; i < r; i++) dims[i] = i == axis ? depth : ind->dims[k++];
  if (expect_dims(ctx, &out[0], "the output", (size_t)r, dims)) return -1;
  if (out[0].count == 0) return 0;
  size_t es = cpu_dtype_size(vals->dtype);
  const uint8_t *off_v = vals->data, *on_v = off_v + es;
  par_fill(ctx, out[0].data, off_v, out[0].count, es);
  /* Indices outside [-depth, depth) leave their row all "off", as the spec says. */
  size_t inner = prod(ind->dims, (size_t)axis, ind->rank);
  for (size_t i = 0; i < ind->count; i++) {
    int64_t v;
    if (!read_index(ind, i, &v)) continue;
    if (v < 0) v += depth;
    if (v < 0 || v >= depth) continue;
    size_t outer = i / inner, rest = i % inner;
    size_t pos = (outer * (size_t)depth + (size_t)v) * inner + rest;
    memcpy((uint8_t *)out[0].data + pos * es, on_v, es);
  }
  return 0;
}

static tsr_plugin_reason check_trilu(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  if (n->in[0].rank < 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input must have rank >= 2");
  return check_int_input(n, 1, "k", msg, size);
}

typedef struct trilu_job {
  const uint8_t *src;
  uint8_t *dst;
  int64_t rows, cols, k;
  size_t es;
  bool upper;
} trilu_job;

static void trilu_rows(void *arg, size_t begin, size_t end) {
  const trilu_job *j = arg;
  size_t rb = (size_t)j->cols * j->es;
  for (size_t u = begin; u < end; u++) {
    int64_t i = (int64_t)(u % (size_t)j->rows);
    /* Keep columns [lo, hi): upper keeps j >= i + k, lower keeps j <= i + k. */
    int64_t lo = j->upper ? i + j->k : 0, hi = j->upper ? j->cols : i + j->k + 1;
    lo = lo < 0 ? 0 : lo > j->cols ? j->cols : lo;
    hi = hi < lo ? lo : hi > j->cols ? j->cols : hi;
    uint8_t *d = j->dst + u * rb;
    const uint8_t *s = j->src + u * rb;
    memset(d, 0, (size_t)lo * j->es);
    memcpy(d + (size_t)lo * j->es, s + (size_t)lo * j->es, (size_t)(hi - lo) * j->es);
    memset(d + (size_t)hi * j->es, 0, (size_t)(j->cols - hi) * j->es);
  }
}

static int run_trilu(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  size_t r = in[0].rank;
  if (r < 2) return cpu_fail(ctx, "input must have rank >= 2, got %zu", r);
  if (expect_dims(ctx, &out[0], "the output", r, in[0].dims)) return -1;
  int64_t k = 0;
  if (has_in(n, in, 1) && read_int_scalar(ctx, &in[1], "k", &k)) return -1;
  if (out[0].count == 0) return 0;
  trilu_job j = {in[0].data, out[0].data, in[0].dims[r - 2], in[0].dims[r - 1], 0,
                 cpu_dtype_size(in[0].dtype), cpu_attr_int(n, "upper", 1) != 0};
  /* Clamp k so that i + k cannot overflow; beyond the matrix every k acts the same. */
  int64_t lim = j.rows + j.cols;
  j.k = k < -lim ? -lim : k > lim ? lim : k;
  size_t rb = (size_t)j.cols * j.es;
  cpu_parallel_for(ctx, out[0].count / (size_t)j.cols, rb >= PAR_BYTES ? 1 : PAR_BYTES / rb,
                   trilu_rows, &j);
  return 0;
}

/* ---- Cast, CastLike ------------------------------------------------------------------------- */

/* Conversions follow C (and numpy on x86-64) where C defines them, and stay defined where it
 * does not: float to integer truncates toward zero, NaN becomes 0, values beyond int64
 * saturate, and narrower integer targets keep the low bits of the int64 (so -1.0 -> uint8 is
 * 255, like numpy). Integer to integer wraps. Anything to bool is "!= 0" (NaN is true). */
enum { KIND_FLOAT, KIND_SIGNED, KIND_UNSIGNED };

static int num_kind(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_INT8:
  case TSR_DTYPE_INT16:
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_INT64: return KIND_SIGNED;
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_UINT16:
  case TSR_DTYPE_UINT32:
  case TSR_DTYPE_UINT64:
  case TSR_DTYPE_BOOL: return KIND_UNSIGNED;
  default: return KIND_FLOAT;
  }
}

static bool is_numeric(uint32_t dt) {
  return is_float_dtype(dt) || is_int_dtype(dt) || dt == TSR_DTYPE_BOOL;
}

#define CAST_CHUNK 256

typedef union cast_buf {
  double f[CAST_CHUNK];
  int64_t s[CAST_CHUNK];
  uint64_t u[CAST_CHUNK];
} cast_buf;

static void cast_load(uint32_t dt, const uint8_t *p, size_t n, cast_buf *b) {
#define LOAD(T, FIELD)                                                                           \
  for (size_t i = 0; i < n; i++) {                                                               \
    T v;                                                                                         \
    memcpy(&v, p + i * sizeof(T), sizeof(T));                                                    \
    b->FIELD[i] = v;                                                                             \
  }                                                                                              \
  break;
  switch (dt) {
  case TSR_DTYPE_FLOAT32: LOAD(float, f)
  case TSR_DTYPE_FLOAT64: LOAD(double, f)
  case TSR_DTYPE_INT8: LOAD(int8_t, s)
  case TSR_DTYPE_INT16: LOAD(int16_t, s)
  case TSR_DTYPE_INT32: LOAD(int32_t, s)
  case TSR_DTYPE_INT64: LOAD(int64_t, s)
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_BOOL: LOAD(uint8_t, u)
  case TSR_DTYPE_UINT16: LOAD(uint16_t, u)
  case TSR_DTYPE_UINT32: LOAD(uint32_t, u)
  case TSR_DTYPE_UINT64: LOAD(uint64_t, u)
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      b->f[i] = dt == TSR_DTYPE_FLOAT16 ? cpu_half_to_float(h) : bf16_to_f32(h);
    }
    break;
  default: break;
  }
#undef LOAD
}

static int64_t f64_to_i64(double v) {
  if (v != v) return 0;
  if (v >= 9223372036854775807.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

static uint64_t f64_to_u64(double v) {
  if (v >= 18446744073709551615.0) return UINT64_MAX;
  if (v >= 9223372036854775808.0) return (uint64_t)v;
  return (uint64_t)f64_to_i64(v);
}

static void cast_store(uint32_t dt, int kind, cast_buf *b, uint8_t *p, size_t n) {
  if (is_float_dtype(dt)) {
    for (size_t i = 0; i < n; i++) {
      /* Integers convert straight to the target precision (one rounding). */
      double d = kind == KIND_FLOAT    ? b->f[i]
                 : kind == KIND_SIGNED ? (double)b->s[i]
                                       : (double)b->u[i];
      float f = kind == KIND_FLOAT    ? (float)b->f[i]
                : kind == KIND_SIGNED ? (float)b->s[i]
                                      : (float)b->u[i];
      if (dt == TSR_DTYPE_FLOAT64) {
        memcpy(p + 8 * i, &d, 8);
      } else if (dt == TSR_DTYPE_FLOAT32) {
        memcpy(p + 4 * i, &f, 4);
      } else {
        uint16_t h = dt == TSR_DTYPE_FLOAT16 ? cpu_float_to_half(f) : f32_to_bf16(f);
        memcpy(p + 2 * i, &h, 2);
      }
    }
    return;
  }
  if (dt == TSR_DTYPE_BOOL) {
    for (size_t i = 0; i < n; i++)
      p[i] = kind == KIND_FLOAT ? b->f[i] != 0.0 : b->u[i] != 0;
    return;
  }
  /* Integer targets: reduce to 64 bits first, then keep the low bytes (little-endian). */
  if (kind == KIND_FLOAT)
    for (size_t i = 0; i < n; i++)
      b->u[i] = dt == TSR_DTYPE_UINT64 ? f64_to_u64(b->f[i]) : (uint64_t)f64_to_i64(b->f[i]);
  else if (kind == KIND_SIGNED)
    for (size_t i = 0; i < n; i++) b->u[i] = (uint64_t)b->s[i];
  size_t es = cpu_dtype_size(dt);
  switch (es) {
  case 1: for (size_t i = 0; i < n; i++) p[i] = (uint8_t)b->u[i]; break;
  case 2:
    for (size_t i = 0; i < n; i++) {
      uint16_t v = (uint16_t)b->u[i];
      memcpy(p + 2 * i, &v, 2);
    }
    break;
  case 4:
    for (size_t i = 0; i < n; i++) {
      uint32_t v = (uint32_t)b->u[i];
      memcpy(p + 4 * i, &v, 4);
    }
    break;
  default: memcpy(p, b->u, 8 * n); break;
  }
}

/* float32 <-> float16 is the cast fp16 models are full of; CPUs with AVX2 have F16C, which
 * converts 8 values per instruction with the same round-to-nearest-even as
 * cpu_float_to_half() (NaN payloads aside: both give a quiet NaN). */
#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define CAST_HAVE_F16C 1

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const uint8_t *src,
                                                                   uint8_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps((const float *)(const void *)(src + 4 * i));
    _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; i++) {
    float f;
    memcpy(&f, src + 4 * i, 4);
    uint16_t h = cpu_float_to_half(f);
    memcpy(dst + 2 * i, &h, 2);
  }
}

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint8_t *src,
                                                                   uint8_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
    _mm256_storeu_ps((float *)(void *)(dst + 4 * i), _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    float f = cpu_half_to_float(h);
    memcpy(dst + 4 * i, &f, 4);
  }
}
#endif

typedef struct cast_job {
  const uint8_t *src;
  uint8_t *dst;
  uint32_t from, to;
  bool f16c; /* use the F16C loops for float32 <-> float16 */
} cast_job;

static void cast_chunk(void *arg, size_t begin, size_t end) {
  const cast_job *j = arg;
#ifdef CAST_HAVE_F16C
  if (j->f16c && j->from == TSR_DTYPE_FLOAT32 && j->to == TSR_DTYPE_FLOAT16) {
    f32_to_f16_f16c(j->src + 4 * begin, j->dst + 2 * begin, end - begin);
    return;
  }
  if (j->f16c && j->from == TSR_DTYPE_FLOAT16 && j->to == TSR_DTYPE_FLOAT32) {
    f16_to_f32_f16c(j->src + 2 * begin, j->dst + 4 * begin, end - begin);
    return;
  }
#endif
  cast_buf buf;
  size_t si = cpu_dtype_size(j->from), so = cpu_dtype_size(j->to);
  int kind = num_kind(j->from);
  for (size_t i = begin; i < end; i += CAST_CHUNK) {
    size_t c = end - i < CAST_CHUNK ? end - i : CAST_CHUNK;
    cast_load(j->from, j->src + i * si, c, &buf);
    cast_store(j->to, kind, &buf, j->dst + i * so, c);
  }
}

static tsr_plugin_reason check_cast(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if (n->n_out < 1) return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "no output");
  uint32_t from = n->in[0].dtype, to = n->out[0].dtype;
  if (!is_numeric(from) || !is_numeric(to))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "cast from %s to %s",
                      cpu_dtype_name(from), cpu_dtype_name(to));
  uint32_t want = !strcmp(n->op_type, "CastLike") ? n->in[1].dtype
                                                  : (uint32_t)cpu_attr_int(n, "to", to);
  if (want != to)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, target %s",
                      cpu_dtype_name(to), cpu_dtype_name(want));
  return TSR_PLUGIN_REASON_NONE;
}

static int run_cast(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  bool like = !strcmp(n->op_type, "CastLike");
  if (need_io(ctx, n, in, like ? 2 : 1, out, 1)) return -1;
  uint32_t from = in[0].dtype, to = out[0].dtype;
  uint32_t want = like ? in[1].dtype : (uint32_t)cpu_attr_int(n, "to", to);
  if (want != to)
    return cpu_fail(ctx, "the output has dtype %s but the target is %s", cpu_dtype_name(to),
                    cpu_dtype_name(want));
  if (!is_numeric(from) || !is_numeric(to))
    return cpu_fail(ctx, "cannot cast %s to %s", cpu_dtype_name(from), cpu_dtype_name(to));
  if (expect_dims(ctx, &out[0], "the output", in[0].rank, in[0].dims)) return -1;
  if (from == to) {
    par_memcpy(ctx, out[0].data, in[0].data, in[0].nbytes);
    return 0;
  }
  cast_job j = {in[0].data, out[0].data, from, to, false};
#ifdef CAST_HAVE_F16C
  j.f16c = ctx->isa == CPU_ISA_AVX2_FMA && cpu_has_f16c();
#endif
  cpu_parallel_for(ctx, in[0].count, 16384, cast_chunk, &j);
  return 0;
}

/* ---- TopK ---------------------------------------------------------------------------------- */

typedef struct topk_item {
  union {
    double f;
    int64_t s;
    uint64_t u;
  } key;
  int64_t idx;
} topk_item;

/* Total orders: NaN sorts above every number; equal keys keep the lower index first. */
static int cmp_f(double a, double b) {
  bool na = a != a, nb = b != b;
  if (na || nb) return na && nb ? 0 : na ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}
#define TIE(x, y) ((x)->idx < (y)->idx ? -1 : (x)->idx > (y)->idx)
static int topk_large_f(const void *a, const void *b) {
  const topk_item *x = a, *y = b;
  int c = cmp_f(y->key.f, x->key.f);
  return c ? c : TIE(x, y);
}
static int topk_small_f(const void *a, const void *b) {
  const topk_item *x = a, *y = b;
  int c = cmp_f(x->key.f, y->key.f);
  return c ? c : TIE(x, y);
}
static int topk_large_s(const void *a, const void *b) {
  const topk_item *x = a, *y = b;
  int c = (y->key.s > x->key.s) - (y->key.s < x->key.s);
  return c ? c : TIE(x, y);
}
static int topk_small_s(const void *a, const void *b) {
  const topk_item *x = a, *y = b;
  int c = (x->key.s > y->key.s) - (x->key.s < y->key.s);
  return c ? c : TIE(x, y);
}
static int topk_large_u(const void *a, const void *b) {
  const topk_item *x = a, *y = b;
  int c = (y->key.u > x->key.u) - (y->key.u < x->key.u);
  return c ? c : TIE(x, y);
}
static int topk_small_u(const void *a, const void *b) {
  const topk_item *x = a, *y = b;
  int c = (x->key.u > y->key.u) - (x->key.u < y->key.u);
  return c ? c : TIE(x, y);
}
#undef TIE

typedef struct topk_job {
  const cpu_tensor *x;
  uint8_t *vals;
  int64_t *idxs;
  size_t dim, inner, k, es;
  int kind;
  int (*cmp)(const void *, const void *);
  atomic_int failed;
} topk_job;

static void topk_rows(void *arg, size_t begin, size_t end) {
  topk_job *j = arg;
  topk_item *items = malloc(j->dim * sizeof *items);
  if (!items) {
    atomic_store(&j->failed, 1);
    return;
  }
  const uint8_t *src = j->x->data;
  for (size_t row = begin; row < end; row++) {
    size_t outer = row / j->inner, in = row % j->inner;
    size_t base = outer * j->dim * j->inner + in;
    for (size_t i = 0; i < j->dim; i++) {
      size_t e = base + i * j->inner;
      if (j->kind == KIND_FLOAT)
        items[i].key.f = cpu_read_f64(j->x, e);
      else if (j->kind == KIND_SIGNED)
        items[i].key.s = cpu_read_int(j->x, e);
      else
        items[i].key.u = (uint64_t)cpu_read_int(j->x, e);
      items[i].idx = (int64_t)i;
    }
    if (j->k == 1) { /* a linear scan beats sorting for the common argmax-like case */
      size_t best = 0;
      for (size_t i = 1; i < j->dim; i++)
        if (j->cmp(&items[i], &items[best]) < 0) best = i;
      items[0] = items[best];
    } else {
      qsort(items, j->dim, sizeof *items, j->cmp);
    }
    size_t obase = outer * j->k * j->inner + in;
    for (size_t i = 0; i < j->k; i++) {
      size_t o = obase + i * j->inner;
      memcpy(j->vals + o * j->es, src + (base + (size_t)items[i].idx * j->inner) * j->es, j->es);
      j->idxs[o] = items[i].idx;
    }
  }
  free(items);
}

static tsr_plugin_reason check_topk(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, n->opset >= 10 ? 2 : 1, msg, size);
  if (r) return r;
  if (!is_numeric(n->in[0].dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s",
                      cpu_dtype_name(n->in[0].dtype));
  if (n->opset >= 10 && (r = check_int_input(n, 1, "k", msg, size))) return r;
  if (n->n_out < 2 || n->out[0].dtype != n->in[0].dtype || n->out[1].dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "outputs must be values and int64");
  return TSR_PLUGIN_REASON_NONE;
}

static int run_topk(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  if (need_io(ctx, n, in, n->opset >= 10 ? 2 : 1, out, 2)) return -1;
  const cpu_tensor *x = &in[0];
  if (same_dtype(ctx, x, &out[0], "output 0")) return -1;
  if (out[1].dtype != TSR_DTYPE_INT64) return cpu_fail(ctx, "output 1 must be int64");
  if (!is_numeric(x->dtype)) return cpu_fail(ctx, "dtype %s", cpu_dtype_name(x->dtype));
  int64_t k, r = x->rank, axis = cpu_attr_int(n, "axis", -1);
  if (n->opset >= 10) {
    if (read_int_scalar(ctx, &in[1], "k", &k)) return -1;
  } else {
    k = cpu_attr_int(n, "k", -1);
  }
  if (r == 0) return cpu_fail(ctx, "the input must have rank >= 1");
  if (run_axis(ctx, &axis, r, "axis")) return -1;
  if (k < 0 || k > x->dims[axis])
    return cpu_fail(ctx, "k = %lld is out of range for axis %lld of size %lld", (long long)k,
                    (long long)axis, (long long)x->dims[axis]);
  int64_t dims[SHP_MAX_RANK];
  memcpy(dims, x->dims, (size_t)r * sizeof *dims);
  dims[axis] = k;
  if (expect_dims(ctx, &out[0], "output 0", (size_t)r, dims) ||
      expect_dims(ctx, &out[1], "output 1", (size_t)r, dims))
    return -1;
  if (out[0].count == 0) return 0;
  bool largest = n->opset < 11 || cpu_attr_int(n, "largest", 1) != 0;
  int kind = num_kind(x->dtype);
  if (x->dtype == TSR_DTYPE_BOOL) kind = KIND_SIGNED;
  if (kind == KIND_UNSIGNED && x->dtype != TSR_DTYPE_UINT64) kind = KIND_SIGNED;
  topk_job j = {.x = x,
                .vals = out[0].data,
                .idxs = out[1].data,
                .dim = (size_t)x->dims[axis],
                .inner = prod(x->dims, (size_t)axis + 1, (size_t)r),
                .k = (size_t)k,
                .es = cpu_dtype_size(x->dtype),
                .kind = kind};
  j.cmp = kind == KIND_FLOAT ? (largest ? topk_large_f : topk_small_f)
          : kind == KIND_SIGNED ? (largest ? topk_large_s : topk_small_s)
                                : (largest ? topk_large_u : topk_small_u);
  atomic_init(&j.failed, 0);
  size_t rows = x->count / j.dim;
  cpu_parallel_for(ctx, rows, j.dim >= 4096 ? 1 : 4096 / j.dim, topk_rows, &j);
  if (atomic_load(&j.failed)) return cpu_fail(ctx, "out of memory");
  return 0;
}

/* ---- NonZero, Compress ---------------------------------------------------------------------- */

/* Zero is all bits clear, or only the sign bit for floats (-0.0); NaN is non-zero. */
static bool elem_nonzero(const uint8_t *p, uint32_t dt, size_t es) {
  uint64_t bits = 0;
  memcpy(&bits, p, es);
  switch (dt) {
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16: bits &= 0x7fffu; break;
  case TSR_DTYPE_FLOAT32: bits &= 0x7fffffffu; break;
  case TSR_DTYPE_FLOAT64: bits &= 0x7fffffffffffffffull; break;
  default: break;
  }
  return bits != 0;
}

static tsr_plugin_reason check_nonzero(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_tensors(n, 1, msg, size);
  if (r) return r;
  if (!is_numeric(n->in[0].dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s",
                      cpu_dtype_name(n->in[0].dtype));
  if (n->n_out < 1 || n->out[0].dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output must be int64");
  return TSR_PLUGIN_REASON_NONE;
}

static int run_nonzero(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  if (need_io(ctx, n, in, 1, out, 1)) return -1;
  const cpu_tensor *x = &in[0];
  if (out[0].dtype != TSR_DTYPE_INT64) return cpu_fail(ctx, "the output must be int64");
  size_t es = cpu_dtype_size(x->dtype), r = x->rank, nnz = 0;
  const uint8_t *p = x->data;
  for (size_t i = 0; i < x->count; i++) nnz += elem_nonzero(p + i * es, x->dtype, es);
  int64_t dims[2] = {(int64_t)r, (int64_t)nnz};
  if (expect_dims(ctx, &out[0], "the output", 2, dims)) return -1;
  if (out[0].count == 0) return 0;
  int64_t *o = out[0].data;
  int64_t idx[SHP_MAX_RANK] = {0};
  size_t j = 0;
  for (size_t i = 0; i < x->count; i++) {
    if (elem_nonzero(p + i * es, x->dtype, es)) {
      for (size_t d = 0; d < r; d++) o[d * nnz + j] = idx[d];
      j++;
    }
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < x->dims[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static tsr_plugin_reason check_compress(const cpu_node *n, char *msg, size_t size) {
  tsr_plugin_reason r = check_copy(n, msg, size);
  if (r) return r;
  if (!has_in(n, n->in, 1))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "condition is missing");
  if (n->in[1].dtype != TSR_DTYPE_BOOL && !is_int_dtype(n->in[1].dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "condition must be bool");
  return TSR_PLUGIN_REASON_NONE;
}

static int run_compress(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                        cpu_tensor *out) {
  if (need_io(ctx, n, in, 2, out, 1)) return -1;
  if (same_dtype(ctx, &in[0], &out[0], "the output")) return -1;
  const cpu_tensor *x = &in[0], *cond = &in[1];
  if (cond->rank != 1) return cpu_fail(ctx, "condition must be 1-D, got rank %u", cond->rank);
  if (cond->dtype != TSR_DTYPE_BOOL && !is_int_dtype(cond->dtype))
    return cpu_fail(ctx, "condition has dtype %s", cpu_dtype_name(cond->dtype));
  bool flat = !cpu_has_attr(n, "axis");
  int64_t axis = cpu_attr_int(n, "axis", 0);
  size_t dim, outer, inner;
  if (flat) {
    dim = x->count;
    outer = inner = 1;
  } else {
    if (x->rank == 0) return cpu_fail(ctx, "the input must have rank >= 1 when axis is given");
    if (run_axis(ctx, &axis, x->rank, "axis")) return -1;
    dim = (size_t)x->dims[axis];
    outer = prod(x->dims, 0, (size_t)axis);
    inner = prod(x->dims, (size_t)axis + 1, x->rank);
  }
  /* numpy's rule: a condition shorter than the axis selects from its prefix; a longer one
   * may only be false beyond the axis. */
  size_t sel = 0;
  for (size_t i = 0; i < cond->count; i++) {
    if (cpu_read_int(cond, i) == 0) continue;
    if (i >= dim)
      return cpu_fail(ctx, "condition is true at position %zu, beyond the axis size %zu", i, dim);
    sel++;
  }
  int64_t dims[SHP_MAX_RANK];
  size_t nd = 1;
  if (flat) {
    dims[0] = (int64_t)sel;
  } else {
    nd = x->rank;
    memcpy(dims, x->dims, nd * sizeof *dims);
    dims[axis] = (int64_t)sel;
  }
  if (expect_dims(ctx, &out[0], "the output", nd, dims)) return -1;
  if (out[0].count == 0) return 0;
  size_t es = cpu_dtype_size(x->dtype), block = inner * es;
  const uint8_t *src = x->data;
  uint8_t *dst = out[0].data;
  size_t ncond = cond->count < dim ? cond->count : dim;
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < ncond; i++)
      if (cpu_read_int(cond, i)) {
        memcpy(dst, src + (o * dim + i) * block, block);
        dst += block;
      }
  return 0;
}

/* ---- The table ------------------------------------------------------------------------------ */

static const cpu_op shape_ops[] = {
    {"Reshape", "", 1, 17, check_copy, NULL, run_reshape, NULL},
    {"Flatten", "", 1, 17, check_copy, NULL, run_flatten, NULL},
    {"Squeeze", "", 1, 17, check_copy, NULL, run_squeeze, NULL},
    {"Unsqueeze", "", 1, 17, check_copy, NULL, run_unsqueeze, NULL},
    {"Transpose", "", 1, 17, check_transpose, NULL, run_transpose, NULL},
    {"Concat", "", 1, 17, check_concat, NULL, run_concat, NULL, concat_nchwc_role},
    {"Split", "", 1, 17, check_split, NULL, run_split, NULL},
    {"Slice", "", 1, 17, check_slice, NULL, run_slice, NULL},
    {"Gather", "", 1, 17, check_gather, NULL, run_gather, NULL},
    {"GatherElements", "", 11, 17, check_gather, NULL, run_gather_elements, NULL},
    {"GatherND", "", 11, 17, check_gather, NULL, run_gather_nd, NULL},
    {"Scatter", "", 9, 10, check_scatter, NULL, run_scatter_elements, NULL},
    {"ScatterElements", "", 11, 17, check_scatter, NULL, run_scatter_elements, NULL},
    {"ScatterND", "", 11, 17, check_scatter, NULL, run_scatter_nd, NULL},
    {"Expand", "", 8, 17, check_expand_tile, NULL, run_expand, NULL},
    {"Tile", "", 6, 17, check_expand_tile, NULL, run_tile, NULL},
    {"Pad", "", 1, 17, check_pad, NULL, run_pad, NULL},
    {"Shape", "", 1, 17, check_int64_out, NULL, run_shape, NULL},
    {"Size", "", 1, 17, check_int64_out, NULL, run_size, NULL},
    {"Cast", "", 6, 17, check_cast, NULL, run_cast, NULL},
    {"CastLike", "", 15, 17, check_cast, NULL, run_cast, NULL},
    {"ConstantOfShape", "", 9, 17, check_constant_of_shape, NULL, run_constant_of_shape, NULL},
    {"Range", "", 11, 17, check_range, NULL, run_range, NULL},
    {"OneHot", "", 9, 17, check_one_hot, NULL, run_one_hot, NULL},
    {"Trilu", "", 14, 17, check_trilu, NULL, run_trilu, NULL},
    {"DepthToSpace", "", 1, 17, check_depth_space, NULL, run_depth_space, NULL},
    {"SpaceToDepth", "", 1, 17, check_depth_space, NULL, run_depth_space, NULL},
    {"EyeLike", "", 9, 17, check_eye_like, NULL, run_eye_like, NULL},
    {"TopK", "", 1, 17, check_topk, NULL, run_topk, NULL},
    {"NonZero", "", 9, 17, check_nonzero, NULL, run_nonzero, NULL},
    {"Compress", "", 9, 17, check_compress, NULL, run_compress, NULL},
};

const cpu_op_list cpu_ops_shape = {shape_ops, sizeof shape_ops / sizeof shape_ops[0]};
