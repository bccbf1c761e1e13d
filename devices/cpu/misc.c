/* Operators that fit no other family: Einsum, Det, Shrink, MeanVarianceNormalization,
 * ReverseSequence and MaxUnpool. The op list at the end of the file is a plain array so that
 * more ops can be appended.
 *
 * Einsum parses its equation into one index space: every label (and every broadcast position
 * of '...') becomes an index with a size, and every operand gets a stride per index (the sum of
 * the strides of its axes with that label, which makes repeated labels read diagonals; 0 where
 * an operand lacks the index or broadcasts a dim of 1). A general kernel then walks that space:
 * output indices outside, summed indices inside. Two float32 operands without diagonals,
 * broadcasting or one-sided sums are mapped to batched GEMMs through cpu_sgemm instead. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/nn_util.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Element access modes: float32 and float64 as plain arrays, other floats through double,
 * integers through int64 with wrap-around arithmetic. */
enum { MODE_F32 = 0, MODE_F64 = 1, MODE_ANYF = 2, MODE_INT = 3 };

static bool is_int_dtype(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_INT8:
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_INT16:
  case TSR_DTYPE_UINT16:
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_UINT32:
  case TSR_DTYPE_INT64:
  case TSR_DTYPE_UINT64: return true;
  default: return false;
  }
}

static int mode_of(uint32_t dt) {
  if (dt == TSR_DTYPE_FLOAT32)
    return MODE_F32;
  if (dt == TSR_DTYPE_FLOAT64)
    return MODE_F64;
  return is_int_dtype(dt) ? MODE_INT : MODE_ANYF;
}

static ALWAYS_INLINE double ldf(const cpu_tensor *t, int mode, size_t i) {
  if (mode == MODE_F32)
    return ((const float *)t->data)[i];
  if (mode == MODE_F64)
    return ((const double *)t->data)[i];
  return cpu_read_f64(t, i);
}

static ALWAYS_INLINE void stf(cpu_tensor *t, int mode, size_t i, double v) {
  if (mode == MODE_F32)
    ((float *)t->data)[i] = (float)v;
  else if (mode == MODE_F64)
    ((double *)t->data)[i] = v;
  else
    cpu_write_f64(t, i, v);
}

/* Stores an integer exactly (cpu_write_f64 would round int64 through double). */
static void st_int(cpu_tensor *t, size_t i, uint64_t v) {
  switch (t->dtype) {
  case TSR_DTYPE_INT64:
  case TSR_DTYPE_UINT64: ((uint64_t *)t->data)[i] = v; break;
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
  case TSR_DTYPE_INT16:
  case TSR_DTYPE_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
  default: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
  }
}

static bool same_dims(const cpu_tensor *a, uint32_t rank, const int64_t *dims) {
  if (a->rank != rank)
    return false;
  for (uint32_t i = 0; i < rank; i++)
    if (a->dims[i] != dims[i])
      return false;
  return true;
}

/* Fails when a present tensor with elements has no data (a host error, checked once). */
static int need_data(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out) {
  for (uint32_t i = 0; i < n->n_in; i++)
    if (in[i].present && in[i].count && !in[i].data)
      return cpu_fail(ctx, "input %u has no data", i);
  for (uint32_t i = 0; i < n->n_out; i++)
    if (out[i].present && out[i].count && !out[i].data)
      return cpu_fail(ctx, "output %u has no memory", i);
  return 0;
}

/* ---- Einsum ----------------------------------------------------------------------------- */

enum { EIN_LETTERS = 52 }; /* 'A'..'Z' are indices 0..25, 'a'..'z' 26..51 (ASCII order) */

/* The equation resolved against the operand shapes. Indices are numbered 0..n_idx-1: letters
 * first, then the broadcast positions of '...'. */
typedef struct ein_plan {
  size_t n_ops;
  size_t n_idx;
  int64_t *size;    /* [n_idx]; -1 for a letter not used */
  int64_t *stride;  /* [n_ops][n_idx] element strides */
  size_t *axis_idx; /* [n_ops][max_rank]: the index of each operand axis */
  size_t max_rank;
  size_t n_out;      /* output rank */
  size_t n_red;      /* summed indices */
  size_t *order;     /* [n_out + n_red]: output indices in output order, then the summed ones */
  int64_t *out_dims; /* [n_out] */
  size_t out_count, red_count;
  void *mem;
} ein_plan;

static void ein_free(ein_plan *p) { free(p->mem); }

static int letter_index(char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return 26 + (ch - 'a');
  return -1;
}

/* Merges dim d into an index size (-1: not seen yet); a dim of 1 broadcasts, as numpy allows. */
static bool merge_size(int64_t *have, int64_t d) {
  if (*have < 0 || *have == 1) {
    *have = d;
    return true;
  }
  return d == 1 || d == *have;
}

/* Parses eq against the operands in[0..n_ops); fills p (free with ein_free). Returns a reason
 * and a message on failure. */
static tsr_plugin_reason ein_parse(const char *eq, const cpu_tensor *in, size_t n_ops, ein_plan *p,
                                   char *msg, size_t size) {
  memset(p, 0, sizeof *p);
  size_t len = strlen(eq), max_rank = 0;
  for (size_t k = 0; k < n_ops; k++)
    if (in[k].rank > max_rank)
      max_rank = in[k].rank;
  /* One block: the equation without spaces, term starts, sizes, strides, axis indices, order
   * and output dims. Counts are bounded by the equation length and the ranks. */
  size_t n_idx = EIN_LETTERS + max_rank;
  size_t bytes = (len + 1) + n_ops * sizeof(size_t) + n_idx * sizeof(int64_t) * 2 +
                 n_ops * n_idx * sizeof(int64_t) + (n_ops * max_rank + 1) * sizeof(size_t) +
                 n_idx * sizeof(size_t) + 64;
  char *mem = calloc(1, bytes);
  if (!mem)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "out of memory");
  p->mem = mem;
  int64_t *size_arr = (int64_t *)mem;
  int64_t *out_dims = size_arr + n_idx;
  int64_t *stride = out_dims + n_idx;
  size_t *axis_idx = (size_t *)(stride + n_ops * n_idx);
  size_t *order = axis_idx + n_ops * max_rank + 1;
  size_t *term_start = order + n_idx;
  char *e = (char *)(term_start + n_ops);
  p->size = size_arr;
  p->out_dims = out_dims;
  p->stride = stride;
  p->axis_idx = axis_idx;
  p->order = order;
  p->n_ops = n_ops;
  p->max_rank = max_rank;
  size_t k = 0;
  for (size_t i = 0; i < len; i++)
    if (eq[i] != ' ')
      e[k++] = eq[i];
  e[k] = '\0';
  char *rhs = strstr(e, "->");
  if (rhs) {
    *rhs = '\0';
    rhs += 2;
    if (strstr(rhs, "->"))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "equation '%s' has two '->'", eq);
  }
  for (size_t i = 0; i < n_idx; i++)
    size_arr[i] = -1;
  int label_count[EIN_LETTERS] = {0};
  size_t ell_r = 0;
  bool any_ell = false;
  /* First pass: check the terms against the ranks and find the '...' rank. */
  size_t t = 0;
  for (char *q = e;; t++) {
    char *end = strchr(q, ',');
    size_t tl = end ? (size_t)(end - q) : strlen(q);
    if (t >= n_ops)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "equation '%s' has more operands than the %zu inputs", eq, n_ops);
    term_start[t] = (size_t)(q - e);
    size_t letters = 0, ells = 0;
    for (size_t j = 0; j < tl; j++) {
      if (letter_index(q[j]) >= 0) {
        letters++;
      } else if (q[j] == '.' && j + 2 < tl && q[j + 1] == '.' && q[j + 2] == '.') {
        ells++;
        j += 2;
      } else {
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                          "equation '%s': unexpected '%c' in operand %zu", eq, q[j], t);
      }
    }
    size_t rank = in[t].rank;
    if (ells > 1 || letters > rank || (ells == 0 && letters != rank))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "equation '%s': operand %zu '%.*s' does not fit an input of rank %zu", eq,
                        t, (int)tl, q, rank);
    if (ells) {
      any_ell = true;
      if (rank - letters > ell_r)
        ell_r = rank - letters;
    }
    if (!end)
      break;
    q = end + 1;
  }
  if (t + 1 != n_ops)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "equation '%s' has %zu operands, but the node has %zu inputs", eq, t + 1,
                      n_ops);
  /* Stride rows are n_idx long; indices past EIN_LETTERS + ell_r stay unused. */
  p->n_idx = n_idx;
  /* Second pass: the index of each axis and the sizes. */
  for (t = 0; t < n_ops; t++) {
    const char *q = e + term_start[t];
    size_t rank = in[t].rank, pos = 0;
    for (size_t j = 0; q[j] && q[j] != ','; j++) {
      if (q[j] == '.') {
        size_t letters = 0;
        for (size_t m = 0; q[m] && q[m] != ','; m++)
          letters += letter_index(q[m]) >= 0;
        size_t ers = rank - letters;
        for (size_t m = 0; m < ers; m++) {
          size_t idx = EIN_LETTERS + (ell_r - ers) + m;
          axis_idx[t * max_rank + pos] = idx;
          if (!merge_size(&size_arr[idx], in[t].dims[pos]))
            return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                              "equation '%s': the dims under '...' do not broadcast", eq);
          pos++;
        }
        j += 2;
        continue;
      }
      int li = letter_index(q[j]);
      axis_idx[t * max_rank + pos] = (size_t)li;
      if (!merge_size(&size_arr[li], in[t].dims[pos]))
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                          "equation '%s': label '%c' has size %lld in input %zu but %lld elsewhere",
                          eq, q[j], (long long)in[t].dims[pos], t, (long long)size_arr[li]);
      label_count[li]++;
      pos++;
    }
  }
  /* The output indices. */
  bool in_out[EIN_LETTERS] = {false};
  size_t n_out = 0;
  if (rhs) {
    bool ell_out = false;
    for (const char *q = rhs; *q; q++) {
      if (q[0] == '.' && q[1] == '.' && q[2] == '.' && !ell_out) {
        for (size_t m = 0; m < ell_r; m++)
          order[n_out++] = EIN_LETTERS + m;
        ell_out = true;
        q += 2;
        continue;
      }
      int li = letter_index(*q);
      if (li < 0 || in_out[li] || label_count[li] == 0)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                          "equation '%s': output label '%c' is invalid, repeated or not in any "
                          "operand",
                          eq, *q);
      in_out[li] = true;
      order[n_out++] = (size_t)li;
    }
    if (ell_r > 0 && !ell_out)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "equation '%s': the output must keep the dims under '...'", eq);
  } else {
    if (any_ell)
      for (size_t m = 0; m < ell_r; m++)
        order[n_out++] = EIN_LETTERS + m;
    for (int li = 0; li < EIN_LETTERS; li++)
      if (label_count[li] == 1) {
        in_out[li] = true;
        order[n_out++] = (size_t)li;
      }
  }
  p->n_out = n_out;
  size_t n_red = 0;
  for (int li = 0; li < EIN_LETTERS; li++)
    if (label_count[li] > 0 && !in_out[li])
      order[n_out + n_red++] = (size_t)li;
  p->n_red = n_red;
  /* Sizes must stay addressable. */
  double oc = 1.0, rc = 1.0;
  p->out_count = 1;
  p->red_count = 1;
  for (size_t i = 0; i < n_out; i++) {
    out_dims[i] = size_arr[order[i]];
    oc *= (double)out_dims[i];
    p->out_count *= (size_t)out_dims[i];
  }
  for (size_t i = 0; i < n_red; i++) {
    rc *= (double)size_arr[order[n_out + i]];
    p->red_count *= (size_t)size_arr[order[n_out + i]];
  }
  if (oc > 9.0e15 || rc > 9.0e15 || (oc > 0 && rc > 0 && oc * rc > 9.0e18))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "equation '%s': the index space is too large", eq);
  /* Strides: the operand's row-major strides summed per index; 0 where a dim of 1 broadcasts. */
  for (t = 0; t < n_ops; t++) {
    int64_t st = 1;
    for (size_t a = in[t].rank; a-- > 0;) {
      size_t idx = axis_idx[t * max_rank + a];
      if (!(in[t].dims[a] == 1 && size_arr[idx] != 1))
        stride[t * n_idx + idx] += st;
      st *= in[t].dims[a];
    }
  }
  return TSR_PLUGIN_REASON_NONE;
}

static bool ein_dtype_ok(uint32_t dt) { return nn_is_float(dt) || is_int_dtype(dt); }

static tsr_plugin_reason ein_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   ein_plan *p, char *msg, size_t size) {
  char s1[96], s2[96];
  memset(p, 0, sizeof *p);
  if (n->n_in < 1 || n->n_out != 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs and one output");
  for (uint32_t i = 0; i < n->n_in; i++) {
    if (!in[i].present)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input %u is absent", i);
    if (in[i].dtype != in[0].dtype)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "input %u is %s, input 0 is %s", i,
                        cpu_dtype_name(in[i].dtype), cpu_dtype_name(in[0].dtype));
  }
  if (!ein_dtype_ok(in[0].dtype) || out[0].dtype != in[0].dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(in[0].dtype));
  const char *eq = cpu_attr_string(n, "equation", NULL);
  if (!eq)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute equation is missing");
  tsr_plugin_reason r = ein_parse(eq, in, n->n_in, p, msg, size);
  if (r) {
    ein_free(p);
    return r;
  }
  if (!same_dims(&out[0], (uint32_t)p->n_out, p->out_dims)) {
    r = cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output is %s, equation '%s' gives %s",
                   nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims), eq,
                   nn_dims_str(s2, sizeof s2, (uint32_t)p->n_out, p->out_dims));
    ein_free(p);
    return r;
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason einsum_check(const cpu_node *n, char *msg, size_t size) {
  ein_plan p;
  tsr_plugin_reason r = ein_setup(n, n->in, n->out, &p, msg, size);
  if (!r)
    ein_free(&p);
  return r;
}

typedef struct ein_job {
  const ein_plan *p;
  const cpu_tensor *in;
  cpu_tensor *out;
  int mode;
  atomic_bool oom;
} ein_job;

/* Output elements [begin, end): each sums the product of the operands over the summed
 * indices, walked as an odometer whose innermost index is a plain loop. */
static ALWAYS_INLINE void ein_range(ein_job *j, size_t begin, size_t end, int mode) {
  const ein_plan *p = j->p;
  size_t nops = p->n_ops, no = p->n_out, nr = p->n_red, ni = p->n_idx;
  size_t *ctr = malloc((nr + 1) * sizeof *ctr + 2 * (nops + 1) * sizeof(int64_t));
  if (!ctr) {
    atomic_store(&j->oom, true);
    return;
  }
  int64_t *base = (int64_t *)(ctr + nr + 1), *off = base + nops + 1;
  size_t inner = nr ? (size_t)p->size[p->order[no + nr - 1]] : 1;
  size_t outer = inner ? p->red_count / inner : 0;
  for (size_t o = begin; o < end; o++) {
    /* The operands' offsets for output element o. */
    for (size_t k = 0; k < nops; k++)
      base[k] = 0;
    size_t rem = o;
    for (size_t a = no; a-- > 0;) {
      size_t idx = p->order[a], d = (size_t)p->size[idx];
      size_t c = rem % d;
      rem /= d;
      for (size_t k = 0; k < nops; k++)
        base[k] += (int64_t)c * p->stride[k * ni + idx];
    }
    double accf = 0.0;
    uint64_t acci = 0;
    if (p->red_count) {
      for (size_t m = 0; m < nr; m++)
        ctr[m] = 0;
      for (size_t k = 0; k < nops; k++)
        off[k] = base[k];
      size_t in_idx = nr ? p->order[no + nr - 1] : 0;
      for (size_t it = 0; it < outer; it++) {
        for (size_t i = 0; i < inner; i++) {
          if (mode == MODE_INT) {
            uint64_t v = 1;
            for (size_t k = 0; k < nops; k++) {
              int64_t s = nr ? p->stride[k * ni + in_idx] : 0;
              v *= (uint64_t)cpu_read_int(&j->in[k], (size_t)(off[k] + (int64_t)i * s));
            }
            acci += v;
          } else {
            double v = 1.0;
            for (size_t k = 0; k < nops; k++) {
              int64_t s = nr ? p->stride[k * ni + in_idx] : 0;
              v *= ldf(&j->in[k], mode, (size_t)(off[k] + (int64_t)i * s));
            }
            accf += v;
          }
        }
        /* Advance the outer summed indices (all but the innermost). */
        for (size_t m = nr > 1 ? nr - 1 : 0; m-- > 0;) {
          size_t idx = p->order[no + m];
          ctr[m]++;
          for (size_t k = 0; k < nops; k++)
            off[k] += p->stride[k * ni + idx];
          if (ctr[m] < (size_t)p->size[idx])
            break;
          for (size_t k = 0; k < nops; k++)
            off[k] -= (int64_t)ctr[m] * p->stride[k * ni + idx];
          ctr[m] = 0;
        }
      }
    }
    if (mode == MODE_INT)
      st_int(j->out, o, acci);
    else
      stf(j->out, mode, o, accf);
  }
  free(ctr);
}

static void ein_task(void *arg, size_t begin, size_t end) {
  ein_job *j = arg;
  switch (j->mode) {
  case MODE_F32: ein_range(j, begin, end, MODE_F32); break;
  case MODE_F64: ein_range(j, begin, end, MODE_F64); break;
  case MODE_INT: ein_range(j, begin, end, MODE_INT); break;
  default: ein_range(j, begin, end, MODE_ANYF); break;
  }
}

/* ---- Einsum as batched GEMM ---- */

/* The index groups of a two-operand contraction: batch (both operands and the output), m (A
 * and the output), n (B and the output), k (both operands, summed). */
typedef struct ein_gemm {
  size_t lists[4][EIN_LETTERS + 64];
  size_t count[4];
  size_t batch, m, n, k;
} ein_gemm;

enum { G_BATCH = 0, G_M = 1, G_N = 2, G_K = 3 };

/* Returns true when the plan is a plain two-operand contraction; fills g. */
static bool ein_gemm_plan(const ein_plan *p, const cpu_tensor *in, ein_gemm *g) {
  if (p->n_ops != 2 || p->max_rank > 64)
    return false;
  memset(g, 0, sizeof *g);
  /* Every axis of an operand has its own index and the index's full size. */
  bool has[2][EIN_LETTERS + 64] = {{false}};
  for (size_t t = 0; t < 2; t++)
    for (size_t a = 0; a < in[t].rank; a++) {
      size_t idx = p->axis_idx[t * p->max_rank + a];
      if (has[t][idx] || in[t].dims[a] != p->size[idx])
        return false;
      has[t][idx] = true;
    }
  bool is_out[EIN_LETTERS + 64] = {false};
  for (size_t i = 0; i < p->n_out; i++)
    is_out[p->order[i]] = true;
  /* Batch, m and k follow A's axis order, n follows B's. */
  for (size_t a = 0; a < in[0].rank; a++) {
    size_t idx = p->axis_idx[a];
    int grp = has[1][idx] ? (is_out[idx] ? G_BATCH : G_K) : (is_out[idx] ? G_M : -1);
    if (grp < 0)
      return false; /* summed in A alone */
    g->lists[grp][g->count[grp]++] = idx;
  }
  for (size_t a = 0; a < in[1].rank; a++) {
    size_t idx = p->axis_idx[p->max_rank + a];
    if (has[0][idx])
      continue;
    if (!is_out[idx])
      return false; /* summed in B alone */
    g->lists[G_N][g->count[G_N]++] = idx;
  }
  size_t prod[4];
  for (int grp = 0; grp < 4; grp++) {
    prod[grp] = 1;
    for (size_t i = 0; i < g->count[grp]; i++)
      prod[grp] *= (size_t)p->size[g->lists[grp][i]];
  }
  g->batch = prod[G_BATCH];
  g->m = prod[G_M];
  g->n = prod[G_N];
  g->k = prod[G_K];
  return true;
}

/* Whether the concatenated index lists (l1 then l2 then l3) address operand t's elements in
 * contiguous row-major order. */
static bool ein_contiguous(const ein_plan *p, size_t t, const size_t *const lists[3],
                           const size_t counts[3]) {
  int64_t want = 1;
  for (int l = 2; l >= 0; l--)
    for (size_t i = counts[l]; i-- > 0;) {
      size_t idx = lists[l][i];
      if (p->size[idx] != 1 && p->stride[t * p->n_idx + idx] != want)
        return false;
      want *= p->size[idx];
    }
  return true;
}

/* Copies between a strided tensor (strides of operand row t, or out_strides when t is the
 * output) and a packed buffer ordered by the concatenated lists. gather: strided -> packed. */
static void ein_copy(const ein_plan *p, const int64_t *strides, const size_t *const lists[3],
                     const size_t counts[3], float *strided, float *packed, size_t total,
                     bool gather) {
  size_t idxs[3 * (EIN_LETTERS + 64)], n = 0;
  for (int l = 0; l < 3; l++)
    for (size_t i = 0; i < counts[l]; i++)
      idxs[n++] = lists[l][i];
  size_t ctr[3 * (EIN_LETTERS + 64)] = {0};
  int64_t off = 0;
  for (size_t e = 0; e < total; e++) {
    if (gather)
      packed[e] = strided[off];
    else
      strided[off] = packed[e];
    for (size_t a = n; a-- > 0;) {
      size_t idx = idxs[a];
      ctr[a]++;
      off += strides[idx];
      if (ctr[a] < (size_t)p->size[idx])
        break;
      off -= (int64_t)ctr[a] * strides[idx];
      ctr[a] = 0;
    }
  }
}

typedef struct ein_batch_job {
  cpu_isa isa;
  const ein_gemm *g;
  bool ta, tb;
  const float *a, *b;
  float *c;
} ein_batch_job;

static void ein_batch_task(void *arg, size_t begin, size_t end) {
  const ein_batch_job *j = arg;
  const ein_gemm *g = j->g;
  cpu_ctx serial = {.pool = NULL, .isa = j->isa};
  for (size_t i = begin; i < end; i++)
    cpu_sgemm(&serial, j->ta, j->tb, g->m, g->n, g->k, 1.0f, j->a + i * g->m * g->k,
              j->ta ? g->m : g->k, j->b + i * g->k * g->n, j->tb ? g->k : g->n, 0.0f,
              j->c + i * g->m * g->n, g->n);
}

/* Runs the contraction as GEMMs; returns -1 on out-of-memory. */
static int ein_run_gemm(cpu_ctx *ctx, const ein_plan *p, const ein_gemm *g, const cpu_tensor *in,
                        cpu_tensor *out) {
  size_t ni = p->n_idx;
  const int64_t *sa = p->stride, *sb = p->stride + ni;
  const size_t *la[3] = {g->lists[G_BATCH], g->lists[G_M], g->lists[G_K]};
  const size_t ca[3] = {g->count[G_BATCH], g->count[G_M], g->count[G_K]};
  const size_t *la_t[3] = {g->lists[G_BATCH], g->lists[G_K], g->lists[G_M]};
  const size_t ca_t[3] = {g->count[G_BATCH], g->count[G_K], g->count[G_M]};
  const size_t *lb[3] = {g->lists[G_BATCH], g->lists[G_K], g->lists[G_N]};
  const size_t cb[3] = {g->count[G_BATCH], g->count[G_K], g->count[G_N]};
  const size_t *lb_t[3] = {g->lists[G_BATCH], g->lists[G_N], g->lists[G_K]};
  const size_t cb_t[3] = {g->count[G_BATCH], g->count[G_N], g->count[G_K]};
  const size_t *lc[3] = {g->lists[G_BATCH], g->lists[G_M], g->lists[G_N]};
  const size_t cc[3] = {g->count[G_BATCH], g->count[G_M], g->count[G_N]};
  /* Output strides by index. */
  int64_t out_stride[EIN_LETTERS + 64] = {0};
  int64_t st = 1;
  for (size_t i = p->n_out; i-- > 0;) {
    out_stride[p->order[i]] = st;
    st *= p->out_dims[i];
  }
  bool ta = false, tb = false;
  float *pa = NULL, *pb = NULL, *pc = NULL;
  const float *a = in[0].data, *b = in[1].data;
  float *c = out->data;
  size_t na = g->batch * g->m * g->k, nb = g->batch * g->k * g->n, nc = g->batch * g->m * g->n;
  if (!ein_contiguous(p, 0, la, ca)) {
    if (ein_contiguous(p, 0, la_t, ca_t)) {
      ta = true;
    } else {
      if (!(pa = malloc((na ? na : 1) * sizeof *pa)))
        goto oom;
      ein_copy(p, sa, la, ca, in[0].data, pa, na, true);
      a = pa;
    }
  }
  if (!ein_contiguous(p, 1, lb, cb)) {
    if (ein_contiguous(p, 1, lb_t, cb_t)) {
      tb = true;
    } else {
      if (!(pb = malloc((nb ? nb : 1) * sizeof *pb)))
        goto oom;
      ein_copy(p, sb, lb, cb, in[1].data, pb, nb, true);
      b = pb;
    }
  }
  /* The output is contiguous in (batch, m, n) order when its strides say so. */
  bool c_direct = true;
  {
    int64_t want = 1;
    for (int l = 2; l >= 0 && c_direct; l--)
      for (size_t i = cc[l]; i-- > 0;) {
        size_t idx = lc[l][i];
        if (p->size[idx] != 1 && out_stride[idx] != want) {
          c_direct = false;
          break;
        }
        want *= p->size[idx];
      }
  }
  if (!c_direct) {
    if (!(pc = malloc((nc ? nc : 1) * sizeof *pc)))
      goto oom;
    c = pc;
  }
  if (g->batch == 1 || (double)g->m * (double)g->n * (double)g->k >= 65536.0) {
    for (size_t i = 0; i < g->batch; i++)
      cpu_sgemm(ctx, ta, tb, g->m, g->n, g->k, 1.0f, a + i * g->m * g->k, ta ? g->m : g->k,
                b + i * g->k * g->n, tb ? g->k : g->n, 0.0f, c + i * g->m * g->n, g->n);
  } else {
    /* Many small products: one thread per batch of them. */
    ein_batch_job j = {.isa = ctx->isa, .g = g, .ta = ta, .tb = tb, .a = a, .b = b, .c = c};
    cpu_parallel_for(ctx, g->batch, nn_grain(g->m * g->n * g->k + 1, 1 << 16), ein_batch_task, &j);
  }
  if (pc)
    ein_copy(p, out_stride, lc, cc, out->data, pc, nc, false);
  free(pa);
  free(pb);
  free(pc);
  return 0;
oom:
  free(pa);
  free(pb);
  free(pc);
  return -1;
}

static int einsum_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  (void)state;
  char msg[256];
  ein_plan p;
  if (ein_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (need_data(ctx, n, in, out)) {
    ein_free(&p);
    return -1;
  }
  int rc = 0;
  if (p.out_count > 0) {
    ein_gemm *g = mode_of(in[0].dtype) == MODE_F32 ? malloc(sizeof *g) : NULL;
    if (g && ein_gemm_plan(&p, in, g)) {
      if (ein_run_gemm(ctx, &p, g, in, &out[0]) != 0)
        rc = cpu_fail(ctx, "out of memory");
    } else {
      ein_job j = {.p = &p, .in = in, .out = &out[0], .mode = mode_of(in[0].dtype)};
      atomic_init(&j.oom, false);
      size_t per = p.red_count * p.n_ops + p.n_out + 1;
      cpu_parallel_for(ctx, p.out_count, nn_grain(per, 1 << 15), ein_task, &j);
      if (atomic_load(&j.oom))
        rc = cpu_fail(ctx, "out of memory");
    }
    free(g);
  }
  ein_free(&p);
  return rc;
}

/* ---- Det ----------------------------------------------------------------------------- */

static tsr_plugin_reason det_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   size_t *batch, size_t *dim, char *msg, size_t size) {
  char s1[96];
  if (n->n_in != 1 || n->n_out != 1 || !in[0].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects one input and one output");
  const cpu_tensor *x = &in[0];
  if (!nn_is_float(x->dtype) || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2])
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "input %s is not a (batch of) square matrices",
                      nn_dims_str(s1, sizeof s1, x->rank, x->dims));
  if (!same_dims(&out[0], x->rank - 2, x->dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output is %s, expected the batch dims",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims));
  *dim = (size_t)x->dims[x->rank - 1];
  if (*dim > ((size_t)1 << 20))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "matrices of %zu rows are too large",
                      *dim);
  *batch = out[0].count;
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason det_check(const cpu_node *n, char *msg, size_t size) {
  size_t b, d;
  return det_setup(n, n->in, n->out, &b, &d, msg, size);
}

typedef struct det_job {
  const cpu_tensor *x;
  cpu_tensor *y;
  size_t dim;
  atomic_bool oom;
} det_job;

/* LU decomposition with partial pivoting in double; the determinant is the product of the
 * pivots, negated per row swap. */
static void det_task(void *arg, size_t begin, size_t end) {
  det_job *j = arg;
  size_t n = j->dim;
  double *a = malloc((n ? n * n : 1) * sizeof *a);
  if (!a) {
    atomic_store(&j->oom, true);
    return;
  }
  int mode = mode_of(j->x->dtype);
  for (size_t m = begin; m < end; m++) {
    size_t base = m * n * n;
    for (size_t i = 0; i < n * n; i++)
      a[i] = ldf(j->x, mode, base + i);
    double det = 1.0;
    for (size_t c = 0; c < n; c++) {
      size_t piv = c;
      double best = fabs(a[c * n + c]);
      for (size_t r = c + 1; r < n; r++)
        if (fabs(a[r * n + c]) > best) {
          best = fabs(a[r * n + c]);
          piv = r;
        }
      if (best == 0.0) { /* singular; NaNs propagate through the products instead */
        det = 0.0;
        break;
      }
      if (piv != c) {
        for (size_t q = 0; q < n; q++) {
          double tmp = a[c * n + q];
          a[c * n + q] = a[piv * n + q];
          a[piv * n + q] = tmp;
        }
        det = -det;
      }
      double d = a[c * n + c];
      det *= d;
      for (size_t r = c + 1; r < n; r++) {
        double f = a[r * n + c] / d;
        if (f == 0.0)
          continue;
        for (size_t q = c + 1; q < n; q++)
          a[r * n + q] -= f * a[c * n + q];
      }
    }
    stf(j->y, mode, m, det);
  }
  free(a);
}

static int det_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[256];
  size_t batch, dim;
  if (det_setup(n, in, out, &batch, &dim, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (need_data(ctx, n, in, out))
    return -1;
  det_job j = {.x = &in[0], .y = &out[0], .dim = dim};
  atomic_init(&j.oom, false);
  cpu_parallel_for(ctx, batch, nn_grain(dim * dim * dim + 1, 1 << 16), det_task, &j);
  if (atomic_load(&j.oom))
    return cpu_fail(ctx, "out of memory for a %zux%zu matrix", dim, dim);
  return 0;
}

/* ---- Shrink ---------------------------------------------------------------------------- */

static tsr_plugin_reason shrink_setup(const cpu_node *n, const cpu_tensor *in,
                                      const cpu_tensor *out, char *msg, size_t size) {
  char s1[96], s2[96];
  if (n->n_in != 1 || n->n_out != 1 || !in[0].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects one input and one output");
  uint32_t dt = in[0].dtype;
  if (!(nn_is_float(dt) || is_int_dtype(dt)) || out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  if (!same_dims(&out[0], in[0].rank, in[0].dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output %s differs from input %s",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims),
                      nn_dims_str(s2, sizeof s2, in[0].rank, in[0].dims));
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason shrink_check(const cpu_node *n, char *msg, size_t size) {
  return shrink_setup(n, n->in, n->out, msg, size);
}

typedef struct shrink_job {
  const cpu_tensor *x;
  cpu_tensor *y;
  double lambd, bias;
} shrink_job;

static ALWAYS_INLINE void shrink_range(const shrink_job *j, size_t begin, size_t end, int mode) {
  double l = j->lambd, b = j->bias;
  if (mode == MODE_F32) {
    const float *x = j->x->data;
    float *y = j->y->data;
    float lf = (float)l, bf = (float)b;
    for (size_t i = begin; i < end; i++)
      y[i] = x[i] < -lf ? x[i] + bf : x[i] > lf ? x[i] - bf : 0.0f;
    return;
  }
  for (size_t i = begin; i < end; i++) {
    double v = mode == MODE_INT ? (double)cpu_read_int(j->x, i) : ldf(j->x, mode, i);
    double r = v < -l ? v + b : v > l ? v - b : 0.0;
    if (mode == MODE_INT)
      st_int(j->y, i, (uint64_t)(int64_t)fmax(fmin(r, 9.2e18), -9.2e18));
    else
      stf(j->y, mode, i, r);
  }
}

static void shrink_task(void *arg, size_t begin, size_t end) {
  const shrink_job *j = arg;
  switch (mode_of(j->x->dtype)) {
  case MODE_F32: shrink_range(j, begin, end, MODE_F32); break;
  case MODE_F64: shrink_range(j, begin, end, MODE_F64); break;
  case MODE_INT: shrink_range(j, begin, end, MODE_INT); break;
  default: shrink_range(j, begin, end, MODE_ANYF); break;
  }
}

static int shrink_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  (void)state;
  char msg[256];
  if (shrink_setup(n, in, out, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (need_data(ctx, n, in, out))
    return -1;
  shrink_job j = {.x = &in[0],
                  .y = &out[0],
                  .lambd = cpu_attr_float(n, "lambd", 0.5f),
                  .bias = cpu_attr_float(n, "bias", 0.0f)};
  cpu_parallel_for(ctx, in[0].count, 1 << 15, shrink_task, &j);
  return 0;
}

/* ---- MeanVarianceNormalization ------------------------------------------------------------ */

/* The reduced axes as a mask; refuses duplicates and axes outside the rank. */
static tsr_plugin_reason mvn_axes(const cpu_node *n, uint32_t rank, bool *mask, char *msg,
                                  size_t size) {
  static const int64_t dflt[] = {0, 2, 3};
  const int64_t *axes;
  size_t count = cpu_attr_ints(n, "axes", &axes);
  if (!axes) {
    axes = dflt;
    count = 3;
  }
  for (uint32_t i = 0; i < rank; i++)
    mask[i] = false;
  for (size_t i = 0; i < count; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + (int64_t)rank : axes[i];
    if (a < 0 || a >= (int64_t)rank)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld is outside rank %u%s",
                        (long long)axes[i], rank,
                        axes == dflt ? " (the default axes are [0,2,3])" : "");
    if (mask[a])
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld is repeated",
                        (long long)axes[i]);
    mask[a] = true;
  }
  return TSR_PLUGIN_REASON_NONE;
}

typedef struct mvn_plan {
  uint32_t rank;
  bool mask[64];
} mvn_plan;

static tsr_plugin_reason mvn_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   mvn_plan *p, char *msg, size_t size) {
  char s1[96], s2[96];
  if (n->n_in != 1 || n->n_out != 1 || !in[0].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects one input and one output");
  uint32_t dt = in[0].dtype;
  if (!nn_is_float(dt) || out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  if (!same_dims(&out[0], in[0].rank, in[0].dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output %s differs from input %s",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims),
                      nn_dims_str(s2, sizeof s2, in[0].rank, in[0].dims));
  if (in[0].rank > 64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "rank %u is above 64", in[0].rank);
  p->rank = in[0].rank;
  return mvn_axes(n, in[0].rank, p->mask, msg, size);
}

static tsr_plugin_reason mvn_check(const cpu_node *n, char *msg, size_t size) {
  mvn_plan p;
  return mvn_setup(n, n->in, n->out, &p, msg, size);
}

/* The input seen as groups (the kept axes) of members (the reduced axes), each a list of
 * (size, stride) pairs walked as an odometer. */
typedef struct mvn_job {
  const cpu_tensor *x;
  cpu_tensor *y;
  size_t n_keep, n_red;
  int64_t keep_dim[64], keep_stride[64], red_dim[64], red_stride[64];
  size_t members;
  atomic_bool oom;
} mvn_job;

static ALWAYS_INLINE void mvn_range(mvn_job *j, size_t begin, size_t end, int mode) {
  size_t *off = malloc((j->members ? j->members : 1) * sizeof *off);
  if (!off) {
    atomic_store(&j->oom, true);
    return;
  }
  for (size_t g = begin; g < end; g++) {
    size_t base = 0, rem = g;
    for (size_t a = j->n_keep; a-- > 0;) {
      size_t d = (size_t)j->keep_dim[a];
      base += (rem % d) * (size_t)j->keep_stride[a];
      rem /= d;
    }
    /* The members' offsets, once, for the three passes. */
    size_t ctr[64] = {0}, o = base;
    for (size_t m = 0; m < j->members; m++) {
      off[m] = o;
      for (size_t a = j->n_red; a-- > 0;) {
        ctr[a]++;
        o += (size_t)j->red_stride[a];
        if (ctr[a] < (size_t)j->red_dim[a])
          break;
        o -= ctr[a] * (size_t)j->red_stride[a];
        ctr[a] = 0;
      }
    }
    double s = 0.0;
    for (size_t m = 0; m < j->members; m++)
      s += ldf(j->x, mode, off[m]);
    double mean = s / (double)j->members, q = 0.0;
    for (size_t m = 0; m < j->members; m++) {
      double d = ldf(j->x, mode, off[m]) - mean;
      q += d * d;
    }
    /* As the ONNX function body: (X - mean) / (sqrt(variance) + 1e-9). */
    double inv = 1.0 / (sqrt(q / (double)j->members) + 1e-9);
    for (size_t m = 0; m < j->members; m++)
      stf(j->y, mode, off[m], (ldf(j->x, mode, off[m]) - mean) * inv);
  }
  free(off);
}

static void mvn_task(void *arg, size_t begin, size_t end) {
  mvn_job *j = arg;
  switch (mode_of(j->x->dtype)) {
  case MODE_F32: mvn_range(j, begin, end, MODE_F32); break;
  case MODE_F64: mvn_range(j, begin, end, MODE_F64); break;
  default: mvn_range(j, begin, end, MODE_ANYF); break;
  }
}

static int mvn_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[256];
  mvn_plan p;
  if (mvn_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (need_data(ctx, n, in, out))
    return -1;
  if (in[0].count == 0)
    return 0;
  mvn_job *j = calloc(1, sizeof *j);
  if (!j)
    return cpu_fail(ctx, "out of memory");
  j->x = &in[0];
  j->y = &out[0];
  j->members = 1;
  size_t groups = 1;
  int64_t st = 1;
  for (uint32_t a = p.rank; a-- > 0;) {
    if (p.mask[a]) {
      j->red_dim[j->n_red] = in[0].dims[a];
      j->red_stride[j->n_red++] = st;
      j->members *= (size_t)in[0].dims[a];
    } else {
      j->keep_dim[j->n_keep] = in[0].dims[a];
      j->keep_stride[j->n_keep++] = st;
      groups *= (size_t)in[0].dims[a];
    }
    st *= in[0].dims[a];
  }
  /* The lists were filled innermost first; the odometers want outermost first. */
  for (size_t a = 0; a < j->n_red / 2; a++) {
    int64_t t = j->red_dim[a];
    j->red_dim[a] = j->red_dim[j->n_red - 1 - a];
    j->red_dim[j->n_red - 1 - a] = t;
    t = j->red_stride[a];
    j->red_stride[a] = j->red_stride[j->n_red - 1 - a];
    j->red_stride[j->n_red - 1 - a] = t;
  }
  for (size_t a = 0; a < j->n_keep / 2; a++) {
    int64_t t = j->keep_dim[a];
    j->keep_dim[a] = j->keep_dim[j->n_keep - 1 - a];
    j->keep_dim[j->n_keep - 1 - a] = t;
    t = j->keep_stride[a];
    j->keep_stride[a] = j->keep_stride[j->n_keep - 1 - a];
    j->keep_stride[j->n_keep - 1 - a] = t;
  }
  atomic_init(&j->oom, false);
  cpu_parallel_for(ctx, groups, nn_grain(3 * j->members, 1 << 15), mvn_task, j);
  bool oom = atomic_load(&j->oom);
  free(j);
  return oom ? cpu_fail(ctx, "out of memory") : 0;
}

/* ---- ReverseSequence ---------------------------------------------------------------------- */

typedef struct revseq_plan {
  int batch_axis, time_axis;
  size_t d0, d1, inner, esize;
} revseq_plan;

static tsr_plugin_reason revseq_setup(const cpu_node *n, const cpu_tensor *in,
                                      const cpu_tensor *out, revseq_plan *p, char *msg,
                                      size_t size) {
  char s1[96], s2[96];
  if (n->n_in != 2 || n->n_out != 1 || !in[0].present || !in[1].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "expects input and sequence_lens, and one output");
  const cpu_tensor *x = &in[0];
  p->esize = cpu_dtype_size(x->dtype);
  if (!p->esize || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (in[1].dtype != TSR_DTYPE_INT64 && in[1].dtype != TSR_DTYPE_INT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "sequence_lens is %s, not int64",
                      cpu_dtype_name(in[1].dtype));
  int64_t ba = cpu_attr_int(n, "batch_axis", 1), ta = cpu_attr_int(n, "time_axis", 0);
  if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "batch_axis %lld and time_axis %lld must be 0 and 1", (long long)ba,
                      (long long)ta);
  if (x->rank < 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input has rank %u, needs 2 or more",
                      x->rank);
  if (!same_dims(&out[0], x->rank, x->dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output %s differs from input %s",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims),
                      nn_dims_str(s2, sizeof s2, x->rank, x->dims));
  if (!same_dims(&in[1], 1, &x->dims[ba]))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "sequence_lens is %s, expected [%lld] (the batch dim)",
                      nn_dims_str(s1, sizeof s1, in[1].rank, in[1].dims), (long long)x->dims[ba]);
  p->batch_axis = (int)ba;
  p->time_axis = (int)ta;
  p->d0 = (size_t)x->dims[0];
  p->d1 = (size_t)x->dims[1];
  p->inner = nn_prod(x->dims, 2, x->rank);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason revseq_check(const cpu_node *n, char *msg, size_t size) {
  revseq_plan p;
  return revseq_setup(n, n->in, n->out, &p, msg, size);
}

static int revseq_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  (void)state;
  char msg[256];
  revseq_plan p;
  if (revseq_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (need_data(ctx, n, in, out))
    return -1;
  size_t steps = p.time_axis == 0 ? p.d0 : p.d1, batch = p.batch_axis == 0 ? p.d0 : p.d1;
  for (size_t b = 0; b < batch; b++) {
    int64_t len = cpu_read_int(&in[1], b);
    if (len < 0 || len > (int64_t)steps)
      return cpu_fail(ctx, "sequence_lens[%zu] = %lld is outside [0, %zu]", b, (long long)len,
                      steps);
  }
  size_t row = p.inner * p.esize;
  const char *x = in[0].data;
  char *y = out[0].data;
  for (size_t i0 = 0; i0 < p.d0; i0++)
    for (size_t i1 = 0; i1 < p.d1; i1++) {
      size_t b = p.batch_axis == 0 ? i0 : i1, t = p.time_axis == 0 ? i0 : i1;
      size_t len = (size_t)cpu_read_int(&in[1], b);
      size_t src_t = t < len ? len - 1 - t : t;
      size_t s0 = p.time_axis == 0 ? src_t : i0, s1 = p.time_axis == 0 ? i1 : src_t;
      if (row)
        memcpy(y + (i0 * p.d1 + i1) * row, x + (s0 * p.d1 + s1) * row, row);
    }
  return 0;
}

/* ---- MaxUnpool ---------------------------------------------------------------------------- */

/* The indices in I are flat positions in the output shape implied by the attributes
 * ((in - 1) * stride + kernel - pads per spatial axis), as MaxPool produced them. When the
 * output_shape input asks for a larger output, each value keeps its coordinates, which is what
 * the ONNX backend test expects (onnxruntime instead reuses the flat index in the larger shape,
 * which moves values between rows). */
typedef struct unpool_plan {
  uint32_t rank;
  int64_t implied[16];
  size_t esize;
} unpool_plan;

static tsr_plugin_reason unpool_setup(const cpu_node *n, const cpu_tensor *in,
                                      const cpu_tensor *out, unpool_plan *p, char *msg,
                                      size_t size) {
  char s1[96], s2[96];
  if (n->n_in < 2 || n->n_in > 3 || n->n_out != 1 || !in[0].present || !in[1].present ||
      !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "expects X, I, an optional output_shape, and one output");
  const cpu_tensor *x = &in[0];
  p->esize = cpu_dtype_size(x->dtype);
  if (!p->esize || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (in[1].dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "I is %s, not int64",
                      cpu_dtype_name(in[1].dtype));
  if (x->rank < 3 || x->rank > 16)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "X has rank %u; 3 to 16 (N, C and spatial dims) are supported", x->rank);
  if (!same_dims(&in[1], x->rank, x->dims))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "I is %s but X is %s",
                      nn_dims_str(s1, sizeof s1, in[1].rank, in[1].dims),
                      nn_dims_str(s2, sizeof s2, x->rank, x->dims));
  size_t nsp = x->rank - 2;
  const int64_t *ks, *st, *pads;
  size_t nk = cpu_attr_ints(n, "kernel_shape", &ks);
  size_t ns = cpu_attr_ints(n, "strides", &st);
  size_t np = cpu_attr_ints(n, "pads", &pads);
  if (!ks || nk != nsp)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "kernel_shape must have %zu values (has %zu)", nsp, nk);
  if (st && ns != nsp)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "strides must have %zu values", nsp);
  if (pads && np != 2 * nsp)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "pads must have %zu values", 2 * nsp);
  p->rank = x->rank;
  p->implied[0] = x->dims[0];
  p->implied[1] = x->dims[1];
  for (size_t i = 0; i < nsp; i++) {
    int64_t k = ks[i], s = st ? st[i] : 1, pb = pads ? pads[i] : 0, pe = pads ? pads[nsp + i] : 0;
    if (k < 1 || s < 1 || pb < 0 || pe < 0 || k > NN_ATTR_LIMIT || s > NN_ATTR_LIMIT ||
        pb > NN_ATTR_LIMIT || pe > NN_ATTR_LIMIT)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "kernel %lld, stride %lld or pads %lld/%lld of axis %zu out of range",
                        (long long)k, (long long)s, (long long)pb, (long long)pe, i);
    if (x->dims[2 + i] > NN_ATTR_LIMIT)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "spatial axis %zu is too large", i);
    int64_t d = x->dims[2 + i] > 0 ? (x->dims[2 + i] - 1) * s + k - pb - pe : 0;
    if (d < 0)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "spatial axis %zu: the implied output size is negative", i);
    p->implied[2 + i] = d;
  }
  double total = 1.0;
  for (uint32_t i = 0; i < x->rank; i++)
    total *= (double)p->implied[i];
  if (total > 4.0e18)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "the implied output is too large");
  if (out[0].rank != x->rank || out[0].dims[0] != x->dims[0] || out[0].dims[1] != x->dims[1])
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output %s does not match X %s in N, C",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims),
                      nn_dims_str(s2, sizeof s2, x->rank, x->dims));
  bool has_shape = n->n_in > 2 && in[2].present;
  if (has_shape) {
    if (in[2].dtype != TSR_DTYPE_INT64 || in[2].rank != 1 || in[2].count != x->rank)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output_shape must be %u int64 values",
                        x->rank);
  } else if (!same_dims(&out[0], x->rank, p->implied)) {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output is %s, expected %s",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims),
                      nn_dims_str(s2, sizeof s2, x->rank, p->implied));
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason unpool_check(const cpu_node *n, char *msg, size_t size) {
  unpool_plan p;
  return unpool_setup(n, n->in, n->out, &p, msg, size);
}

static int unpool_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  (void)state;
  char msg[256], s1[96], s2[96];
  unpool_plan p;
  if (unpool_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (need_data(ctx, n, in, out))
    return -1;
  const cpu_tensor *y = &out[0];
  if (n->n_in > 2 && in[2].present) {
    for (uint32_t i = 0; i < p.rank; i++)
      if (cpu_read_int(&in[2], i) != y->dims[i])
        return cpu_fail(ctx, "output is %s but output_shape asks for another shape",
                        nn_dims_str(s1, sizeof s1, y->rank, y->dims));
  }
  /* Does the output keep the implied layout? Then indices are flat output positions. */
  bool same = same_dims(y, p.rank, p.implied);
  size_t implied_count = nn_prod(p.implied, 0, p.rank);
  if (y->nbytes)
    memset(y->data, 0, y->nbytes);
  const int64_t *idx = in[1].data;
  const char *x = in[0].data;
  char *yd = y->data;
  for (size_t e = 0; e < in[0].count; e++) {
    int64_t v = idx[e];
    if (v < 0 || (uint64_t)v >= implied_count)
      return cpu_fail(ctx, "index I[%zu] = %lld is outside the unpooled shape %s", e, (long long)v,
                      nn_dims_str(s2, sizeof s2, p.rank, p.implied));
    size_t dst = (size_t)v;
    if (!same) {
      /* Decompose in the implied shape, recompose in the output's. */
      size_t rem = (size_t)v, pos = 0, mul = 1;
      for (uint32_t a = p.rank; a-- > 0;) {
        size_t c = rem % (size_t)p.implied[a];
        rem /= (size_t)p.implied[a];
        if (c >= (size_t)y->dims[a])
          return cpu_fail(ctx, "index I[%zu] = %lld falls outside the output %s", e, (long long)v,
                          nn_dims_str(s1, sizeof s1, y->rank, y->dims));
        pos += c * mul;
        mul *= (size_t)y->dims[a];
      }
      dst = pos;
    }
    memcpy(yd + dst * p.esize, x + e * p.esize, p.esize);
  }
  return 0;
}

/* ---- The op list (append new ops at the end) --------------------------------------------- */

static const cpu_op misc_ops[] = {
    {"Einsum", "", 12, 17, einsum_check, NULL, einsum_run, NULL},
    {"Det", "", 11, 17, det_check, NULL, det_run, NULL},
    {"Shrink", "", 9, 17, shrink_check, NULL, shrink_run, NULL},
    {"MeanVarianceNormalization", "", 9, 17, mvn_check, NULL, mvn_run, NULL},
    {"ReverseSequence", "", 10, 17, revseq_check, NULL, revseq_run, NULL},
    {"MaxUnpool", "", 9, 17, unpool_check, NULL, unpool_run, NULL},
};

const cpu_op_list cpu_ops_misc = {misc_ops, sizeof misc_ops / sizeof misc_ops[0]};
