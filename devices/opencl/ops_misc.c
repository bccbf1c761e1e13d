/* Lowering of ops that fit no other family: MeanVarianceNormalization, ReverseSequence,
 * MaxUnpool and Einsum (devices/cpu/misc.c is the reference), DynamicQuantizeLinear
 * (devices/cpu/quant.c), Det and RoiAlign (devices/cpu/detect.c). Where the CPU plugin fails
 * at run time on a value it reads (a sequence length, an unpooling index or a batch index out
 * of range), the kernels here cannot fail: they clamp the length, skip the index, or give 0. */
#include <stdlib.h>

#include "ops_util.h"

/* Row-major element strides of v's dims into st; returns the element count. */
static int64_t row_strides(const tsr_plugin_value *v, int64_t *st) {
  int64_t s = 1;
  for (int d = (int)v->rank - 1; d >= 0; d--) {
    st[d] = s;
    s *= v->dims[d];
  }
  return s;
}

/* ---- MeanVarianceNormalization ----------------------------------------------------------- */

/* (X - mean) / (sqrt(variance) + 1e-9) over `axes` (default [0, 2, 3]), one work item per
 * combination of the kept axes. */
static int lower_mvn(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  if (count_of(&vy) != count_of(&vx) || vy.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output shape differs from the input's");
  static const int64_t dflt[] = {0, 2, 3};
  const int64_t *axes;
  size_t na = attr_ints(L, "axes", &axes);
  if (!has_attr(L, "axes"))
    axes = dflt, na = 3;
  bool mask[16] = {false};
  for (size_t i = 0; i < na; i++) {
    int64_t a = norm_axis(axes[i], vx.rank, false);
    if (a < 0 || mask[a])
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis %lld out of range or repeated",
                    (long long)axes[i]);
    mask[a] = true;
  }
  if (!L->exe)
    return 0;
  int64_t st[16];
  row_strides(&vx, st);
  /* p: [groups, members, n_keep, n_red, keep (dim, stride)..., red (dim, stride)...] */
  int32_t p[4 + 4 * 16];
  int32_t nk = 0, nr = 0, groups = 1, members = 1;
  for (uint32_t a = 0; a < vx.rank; a++) {
    if (mask[a])
      nr++, members *= (int32_t)vx.dims[a];
    else
      nk++, groups *= (int32_t)vx.dims[a];
  }
  int32_t *kp = p + 4, *rp = p + 4 + 2 * nk;
  for (uint32_t a = 0, ik = 0, ir = 0; a < vx.rank; a++) {
    int32_t *q = mask[a] ? rp + 2 * ir++ : kp + 2 * ik++;
    q[0] = (int32_t)vx.dims[a];
    q[1] = (int32_t)st[a];
  }
  p[0] = groups, p[1] = members, p[2] = nk, p[3] = nr;
  STEP(s, "mvn_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_params(L, s, p, 4 + 2 * (size_t)(nk + nr)));
  ocl__launch_1d(s, members ? (uint64_t)groups : 0);
  return 0;
}

/* ---- ReverseSequence --------------------------------------------------------------------- */

static int lower_reverse_sequence(ocl_lower *L) {
  int32_t x = in_idx(L, 0), lens = in_idx(L, 1), y = out_idx(L, 0);
  if (x < 0 || lens < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expects input, sequence_lens and one output");
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vl = vinfo(L, lens), vy = vinfo(L, y);
  if (vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  if (vl.dtype != TSR_DTYPE_INT32 && vl.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "sequence_lens of dtype %s", dtype_name(vl.dtype));
  int64_t ba = attr_int(L, "batch_axis", 1), ta = attr_int(L, "time_axis", 0);
  if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "batch_axis and time_axis must be 0 and 1");
  if (vx.rank < 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 2");
  if (count_of(&vy) != count_of(&vx))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output shape differs from the input's");
  if (vl.rank != 1 || vl.dims[0] != vx.dims[ba])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "sequence_lens is not [batch]");
  if (!L->exe)
    return 0;
  char name[32];
  snprintf(name, sizeof name, "revseq_%s", move_suffix(es));
  int32_t p[6] = {(int32_t)count_of(&vx),
                  (int32_t)vx.dims[0],
                  (int32_t)vx.dims[1],
                  (int32_t)prod(vx.dims, 2, vx.rank),
                  (int32_t)ba,
                  vl.dtype == TSR_DTYPE_INT64};
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_value(L, s, lens, dtype_size(vl.dtype)));
  TRY(ocl__arg_params(L, s, p, 6));
  ocl__launch_1d(s, (uint64_t)p[0]);
  return 0;
}

/* ---- MaxUnpool --------------------------------------------------------------------------- */

/* The indices are flat positions in the shape the attributes imply ((in - 1) * stride + kernel
 * - pads per spatial axis); an output_shape that asks for a larger output keeps each value's
 * coordinates. Three launches: zero Y and the claims; each element of X claims its position
 * (atomic_max of its own index, so that the last of duplicate indices wins, as on the CPU);
 * the winners write. */
static int lower_max_unpool(ocl_lower *L) {
  int32_t x = in_idx(L, 0), ind = in_idx(L, 1), y = out_idx(L, 0);
  if (x < 0 || ind < 0 || y < 0 || n_in(L) > 3)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expects X, I, an optional output_shape, one output");
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vi = vinfo(L, ind), vy = vinfo(L, y);
  if (vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  if (vi.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "I of dtype %s", dtype_name(vi.dtype));
  if (vx.rank < 3 || vx.rank > 5)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only 1-D, 2-D and 3-D unpooling");
  if (vi.rank != vx.rank || count_of(&vi) != count_of(&vx))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "I differs from X in shape");
  uint32_t sp = vx.rank - 2;
  const int64_t *ks, *st, *pads;
  size_t nk = attr_ints(L, "kernel_shape", &ks), ns = attr_ints(L, "strides", &st),
         np = attr_ints(L, "pads", &pads);
  if (nk != sp || (ns && ns != sp) || (np && np != 2 * sp))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE,
                  "kernel_shape, strides or pads of the wrong length");
  int64_t implied[5] = {vx.dims[0], vx.dims[1], 1, 1, 1};
  for (uint32_t i = 0; i < sp; i++) {
    int64_t k = ks[i], s = ns ? st[i] : 1, pb = np ? pads[i] : 0, pe = np ? pads[sp + i] : 0;
    if (k < 1 || s < 1 || pb < 0 || pe < 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "invalid kernel, stride or pads");
    implied[2 + i] = vx.dims[2 + i] > 0 ? (vx.dims[2 + i] - 1) * s + k - pb - pe : 0;
    if (implied[2 + i] < 0 || implied[2 + i] > MAX_ELEMS)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "implied output size out of range");
  }
  if (prod(implied, 0, vx.rank) > MAX_ELEMS)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "implied output of 2^31 elements or more");
  if (vy.rank != vx.rank || vy.dims[0] != vx.dims[0] || vy.dims[1] != vx.dims[1])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output does not match X in N and C");
  bool same = true;
  for (uint32_t i = 0; i < vx.rank; i++)
    same = same && vy.dims[i] == implied[i];
  if (!same && in_idx(L, 2) < 0)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output differs from the implied shape");
  if (!L->exe)
    return 0;
  int64_t ny = count_of(&vy);
  cl_mem win = ocl__buffer(L, (uint64_t)(ny ? ny : 1) * sizeof(int32_t), NULL);
  if (!win)
    return OCL_LOWER_DEVICE_ERROR;
  /* p: [n_x, rank, implied[rank], out[rank], same] */
  int32_t p[3 + 10];
  p[0] = (int32_t)count_of(&vx);
  p[1] = (int32_t)vx.rank;
  for (uint32_t i = 0; i < vx.rank; i++) {
    p[2 + i] = (int32_t)implied[i];
    p[2 + vx.rank + i] = (int32_t)vy.dims[i];
  }
  p[2 + 2 * vx.rank] = same;
  size_t np_ = 3 + 2 * (size_t)vx.rank;
  char name[32];
  snprintf(name, sizeof name, "unpool_zero_%s", move_suffix(es));
  STEP(s0, name);
  TRY(ocl__arg_value(L, s0, y, es));
  TRY(ocl__arg_mem(L, s0, win));
  TRY(ocl__arg_int(L, s0, (int32_t)ny));
  ocl__launch_1d(s0, (uint64_t)ny);
  STEP(s1, "unpool_claim");
  TRY(ocl__arg_value(L, s1, ind, 8));
  TRY(ocl__arg_mem(L, s1, win));
  TRY(ocl__arg_params(L, s1, p, np_));
  ocl__launch_1d(s1, (uint64_t)p[0]);
  snprintf(name, sizeof name, "unpool_write_%s", move_suffix(es));
  STEP(s2, name);
  TRY(ocl__arg_value(L, s2, y, es));
  TRY(ocl__arg_value(L, s2, x, es));
  TRY(ocl__arg_value(L, s2, ind, 8));
  TRY(ocl__arg_mem(L, s2, win));
  TRY(ocl__arg_params(L, s2, p, np_));
  ocl__launch_1d(s2, (uint64_t)p[0]);
  return 0;
}

/* ---- Einsum ------------------------------------------------------------------------------ */

/* One or two operands, any equation numpy accepts for them (repeated labels read diagonals,
 * '...' broadcasts, the implicit output is the '...' dims then the labels used once in ASCII
 * order). The equation becomes one index space: each label and each '...' position is an
 * index with a size and, per operand, the sum of the strides of its axes with that index (0
 * where a dim of 1 broadcasts). One work item per output element sums over the other indices;
 * float32 batched matrix products go to the tiled GEMM instead (einsum_gemm). More operands
 * are refused (the CPU contracts them). */
enum { EIN_LETTERS = 52, EIN_MAX = EIN_LETTERS + 16 };

static int ein_letter(char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return 26 + (ch - 'a');
  return -1;
}

static bool ein_merge(int64_t *have, int64_t d) {
  if (*have < 0 || *have == 1) {
    *have = d;
    return true;
  }
  return d == 1 || d == *have;
}

/* A two-operand float32 Einsum that is a batched matrix product runs on ops.c's tiled GEMM:
 * the output's indices are batch indices (in both operands), then m indices (in A only), then
 * n indices (in B only); A's axes are the batch indices in the output's order followed by the
 * m indices and the summed k indices (either order: a transposed A), B's the batch indices, k
 * in A's order, and n (either order). No label repeats within an operand, no dim broadcasts
 * and no label is summed in one operand alone. Returns OCL_LOWER_NOT_MINE when the equation is
 * not of that form, for the direct kernel. */
static bool ein_seq_is(const uint32_t *axes, uint32_t n, const uint32_t *a, uint32_t na,
                       const uint32_t *b, uint32_t nb, const uint32_t *c, uint32_t nc) {
  if (n != na + nb + nc)
    return false;
  for (uint32_t i = 0; i < na; i++)
    if (axes[i] != a[i])
      return false;
  for (uint32_t i = 0; i < nb; i++)
    if (axes[na + i] != b[i])
      return false;
  for (uint32_t i = 0; i < nc; i++)
    if (axes[na + nb + i] != c[i])
      return false;
  return true;
}

static int einsum_gemm(ocl_lower *L, const tsr_plugin_value *vo, uint32_t axis_idx[2][16],
                       const int64_t *size, const uint32_t *order, uint32_t n_out, int32_t y) {
  bool in[2][EIN_MAX] = {{false}}, in_out[EIN_MAX] = {false};
  for (uint32_t t = 0; t < 2; t++)
    for (uint32_t a = 0; a < vo[t].rank; a++) {
      uint32_t idx = axis_idx[t][a];
      if (in[t][idx] || vo[t].dims[a] != size[idx])
        return OCL_LOWER_NOT_MINE;
      in[t][idx] = true;
    }
  for (uint32_t i = 0; i < n_out; i++)
    in_out[order[i]] = true;
  uint32_t bs[EIN_MAX], ms[EIN_MAX], ns[EIN_MAX], ks[EIN_MAX], nb = 0, nm = 0, nn = 0, nk = 0;
  int phase = 0; /* the output must run batch, then m, then n */
  for (uint32_t i = 0; i < n_out; i++) {
    uint32_t idx = order[i];
    int cls = in[0][idx] && in[1][idx] ? 0 : in[0][idx] ? 1 : 2;
    if (cls < phase)
      return OCL_LOWER_NOT_MINE;
    phase = cls;
    if (cls == 0)
      bs[nb++] = idx;
    else if (cls == 1)
      ms[nm++] = idx;
    else
      ns[nn++] = idx;
  }
  for (uint32_t a = 0; a < vo[0].rank; a++) {
    uint32_t idx = axis_idx[0][a];
    if (!in_out[idx]) {
      if (!in[1][idx])
        return OCL_LOWER_NOT_MINE; /* summed in A alone */
      ks[nk++] = idx;
    }
  }
  for (uint32_t a = 0; a < vo[1].rank; a++)
    if (!in_out[axis_idx[1][a]] && !in[0][axis_idx[1][a]])
      return OCL_LOWER_NOT_MINE;
  int tA, tB;
  if (ein_seq_is(axis_idx[0], vo[0].rank, bs, nb, ms, nm, ks, nk))
    tA = 0;
  else if (ein_seq_is(axis_idx[0], vo[0].rank, bs, nb, ks, nk, ms, nm))
    tA = 1;
  else
    return OCL_LOWER_NOT_MINE;
  if (ein_seq_is(axis_idx[1], vo[1].rank, bs, nb, ks, nk, ns, nn))
    tB = 0;
  else if (ein_seq_is(axis_idx[1], vo[1].rank, bs, nb, ns, nn, ks, nk))
    tB = 1;
  else
    return OCL_LOWER_NOT_MINE;
  int64_t B = 1, M = 1, N = 1, K = 1;
  for (uint32_t i = 0; i < nb; i++)
    B *= size[bs[i]];
  for (uint32_t i = 0; i < nm; i++)
    M *= size[ms[i]];
  for (uint32_t i = 0; i < nn; i++)
    N *= size[ns[i]];
  for (uint32_t i = 0; i < nk; i++)
    K *= size[ks[i]];
  if (B * 2 + 9 > 1 << 24)
    return OCL_LOWER_NOT_MINE;
  int32_t *off = calloc(2 * (size_t)B + 1, sizeof *off);
  if (!off)
    return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
  for (int64_t i = 0; i < B; i++) {
    off[i] = (int32_t)(i * M * K);
    off[B + i] = (int32_t)(i * K * N);
  }
  int rc = ocl__emit_gemm(L, in_idx(L, 0), in_idx(L, 1), y, (int32_t)M, (int32_t)N, (int32_t)K, tA,
                          tB, off, off + B, (int32_t)B);
  free(off);
  return rc;
}

static int lower_einsum(ocl_lower *L) {
  uint32_t nops = n_in(L);
  int32_t y = out_idx(L, 0);
  if (nops < 1 || nops > 2 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER,
                  "Einsum with %u operands not supported on OpenCL "
                  "(one or two are)",
                  nops);
  tsr_plugin_value vo[2], vy = vinfo(L, y);
  for (uint32_t k = 0; k < nops; k++) {
    if (in_idx(L, k) < 0)
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input");
    vo[k] = vinfo(L, in_idx(L, k));
    if (vo[k].dtype != vy.dtype)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "input dtypes differ");
    if (vo[k].rank > 16)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  }
  uint32_t dt = vy.dtype;
  if (dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT64 && dt != TSR_DTYPE_INT32 &&
      dt != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE,
                  "dtype %s not supported (float32, float64, int32, "
                  "int64 are)",
                  dtype_name(dt));
  TRY(numeric_dtype_ok(L, dt));
  const char *eq = attr_str(L, "equation", NULL);
  if (!eq)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute equation is missing");
  char e[256];
  size_t k = 0;
  for (const char *q = eq; *q; q++)
    if (*q != ' ') {
      if (k + 1 >= sizeof e)
        return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "equation too long");
      e[k++] = *q;
    }
  e[k] = '\0';
  char *rhs = strstr(e, "->");
  if (rhs) {
    *rhs = '\0';
    rhs += 2;
  }
  /* Terms, their '...' rank and the index of each axis. */
  const char *terms[2];
  size_t tlen[2];
  uint32_t nt = 0;
  for (char *q = e;;) {
    char *end = strchr(q, ',');
    if (nt >= nops)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "more terms than inputs");
    terms[nt] = q;
    tlen[nt++] = end ? (size_t)(end - q) : strlen(q);
    if (!end)
      break;
    q = end + 1;
  }
  if (nt != nops)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "fewer terms than inputs");
  uint32_t ell_r = 0, ers[2] = {0, 0};
  bool any_ell = false;
  for (uint32_t t = 0; t < nops; t++) {
    uint32_t letters = 0, ells = 0;
    for (size_t j = 0; j < tlen[t]; j++) {
      if (ein_letter(terms[t][j]) >= 0) {
        letters++;
      } else if (terms[t][j] == '.' && j + 2 < tlen[t] && terms[t][j + 1] == '.' &&
                 terms[t][j + 2] == '.') {
        ells++;
        j += 2;
      } else {
        return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "equation '%s': unexpected character", eq);
      }
    }
    if (ells > 1 || letters > vo[t].rank || (!ells && letters != vo[t].rank))
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "equation '%s' does not fit input %u", eq, t);
    any_ell |= ells == 1;
    ers[t] = ells ? vo[t].rank - letters : 0;
    if (ers[t] > ell_r)
      ell_r = ers[t];
  }
  int64_t size[EIN_MAX], stride[2][EIN_MAX];
  int count[EIN_LETTERS] = {0};
  uint32_t axis_idx[2][16];
  for (int i = 0; i < EIN_MAX; i++)
    size[i] = -1, stride[0][i] = stride[1][i] = 0;
  for (uint32_t t = 0; t < nops; t++) {
    uint32_t pos = 0;
    for (size_t j = 0; j < tlen[t]; j++) {
      if (terms[t][j] == '.') {
        for (uint32_t m = 0; m < ers[t]; m++, pos++) {
          uint32_t idx = EIN_LETTERS + (ell_r - ers[t]) + m;
          axis_idx[t][pos] = idx;
          if (!ein_merge(&size[idx], vo[t].dims[pos]))
            return refuse(L, TSR_PLUGIN_REASON_SHAPE, "the dims under '...' do not broadcast");
        }
        j += 2;
        continue;
      }
      int li = ein_letter(terms[t][j]);
      axis_idx[t][pos] = (uint32_t)li;
      if (!ein_merge(&size[li], vo[t].dims[pos]))
        return refuse(L, TSR_PLUGIN_REASON_SHAPE, "label '%c' has two sizes", terms[t][j]);
      count[li]++;
      pos++;
    }
  }
  uint32_t order[EIN_MAX], n_out = 0, n_red = 0;
  bool in_out[EIN_LETTERS] = {false};
  if (rhs) {
    bool ell_out = false;
    for (const char *q = rhs; *q; q++) {
      if (q[0] == '.' && q[1] == '.' && q[2] == '.' && !ell_out) {
        for (uint32_t m = 0; m < ell_r; m++)
          order[n_out++] = EIN_LETTERS + m;
        ell_out = true;
        q += 2;
        continue;
      }
      int li = ein_letter(*q);
      if (li < 0 || in_out[li] || count[li] == 0)
        return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "equation '%s': bad output label", eq);
      in_out[li] = true;
      order[n_out++] = (uint32_t)li;
    }
    if (ell_r > 0 && !ell_out)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "the output must keep the '...' dims");
  } else {
    if (any_ell)
      for (uint32_t m = 0; m < ell_r; m++)
        order[n_out++] = EIN_LETTERS + m;
    for (int li = 0; li < EIN_LETTERS; li++)
      if (count[li] == 1)
        in_out[li] = true, order[n_out++] = (uint32_t)li;
  }
  for (int li = 0; li < EIN_LETTERS; li++)
    if (count[li] > 0 && !in_out[li])
      order[n_out + n_red++] = (uint32_t)li;
  if (vy.rank != n_out)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output rank differs from the equation's");
  double oc = 1, rc = 1;
  for (uint32_t i = 0; i < n_out; i++) {
    if (vy.dims[i] != size[order[i]])
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output shape differs from the equation's");
    oc *= (double)size[order[i]];
  }
  for (uint32_t i = 0; i < n_red; i++)
    rc *= (double)size[order[n_out + i]];
  if (oc > (double)MAX_ELEMS || rc > (double)MAX_ELEMS)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "the index space is too large");
  if (!L->exe)
    return 0;
  for (uint32_t t = 0; t < nops; t++) {
    int64_t s = 1;
    for (int a = (int)vo[t].rank - 1; a >= 0; a--) {
      uint32_t idx = axis_idx[t][a];
      if (!(vo[t].dims[a] == 1 && size[idx] != 1))
        stride[t][idx] += s;
      s *= vo[t].dims[a];
    }
  }
  if (nops == 2 && dt == TSR_DTYPE_FLOAT32 && L->dev->max_work_group >= 256) {
    int rc = einsum_gemm(L, vo, axis_idx, size, order, n_out, y);
    if (rc != OCL_LOWER_NOT_MINE)
      return rc;
  }
  /* p: [nops, n_out, n_red, out_count, red_count, (size, stride0, stride1) per output index,
   * then per summed index]; strides fit 32 bits since each operand is below 2^31 elements. */
  int32_t p[5 + 3 * EIN_MAX];
  p[0] = (int32_t)nops, p[1] = (int32_t)n_out, p[2] = (int32_t)n_red;
  p[3] = (int32_t)oc, p[4] = (int32_t)rc;
  for (uint32_t i = 0; i < n_out + n_red; i++) {
    uint32_t idx = order[i];
    p[5 + 3 * i] = (int32_t)size[idx];
    p[6 + 3 * i] = (int32_t)stride[0][idx];
    p[7 + 3 * i] = (int32_t)stride[1][idx];
  }
  char name[32];
  snprintf(name, sizeof name, "einsum_%s", num_suffix(dt));
  uint32_t es = dtype_size(dt);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, in_idx(L, 0), es));
  TRY(ocl__arg_value(L, s, nops > 1 ? in_idx(L, 1) : -1, es));
  TRY(ocl__arg_params(L, s, p, 5 + 3 * (size_t)(n_out + n_red)));
  ocl__launch_1d(s, (uint64_t)oc);
  return 0;
}

/* ---- DynamicQuantizeLinear --------------------------------------------------------------- */

/* float32 to uint8 with the range of the data, as the ONNX reference computes it (scale and
 * zero point in double, so the device needs cl_khr_fp64). Three launches: partial minima and
 * maxima (DYNQ_PARTS work items, each a strided slice), one work item that combines them and
 * writes y_scale, y_zero_point and a copy for the last launch, which quantizes. */
enum { DYNQ_PARTS = 1024 };

static int lower_dynamic_quantize(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0), ys = out_idx(L, 1), yz = out_idx(L, 2);
  if (x < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input");
  tsr_plugin_value vx = vinfo(L, x);
  if (vx.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (float32 is)",
                  dtype_name(vx.dtype));
  const int32_t outs[3] = {y, ys, yz};
  const uint32_t want[3] = {TSR_DTYPE_UINT8, TSR_DTYPE_FLOAT32, TSR_DTYPE_UINT8};
  for (int k = 0; k < 3; k++) {
    if (outs[k] < 0)
      continue;
    tsr_plugin_value v = vinfo(L, outs[k]);
    if (v.dtype != want[k])
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output %d of dtype %s", k, dtype_name(v.dtype));
    if (k == 0 ? count_of(&v) != count_of(&vx) : count_of(&v) != 1)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output %d has the wrong size", k);
  }
  if (!L->dev->fp64)
    return refuse(L, TSR_PLUGIN_REASON_PRECISION,
                  "DynamicQuantizeLinear needs cl_khr_fp64 (the scale is computed in double)");
  if (!L->exe)
    return 0;
  int64_t n = count_of(&vx);
  int32_t parts = n < DYNQ_PARTS ? (int32_t)(n ? n : 1) : DYNQ_PARTS;
  cl_mem part = ocl__buffer(L, (uint64_t)(2 * parts + 2) * sizeof(float), NULL);
  if (!part)
    return OCL_LOWER_DEVICE_ERROR;
  STEP(s0, "dynq_minmax");
  TRY(ocl__arg_value(L, s0, x, 4));
  TRY(ocl__arg_mem(L, s0, part));
  TRY(ocl__arg_int(L, s0, (int32_t)n));
  TRY(ocl__arg_int(L, s0, parts));
  ocl__launch_1d(s0, (uint64_t)parts);
  STEP(s1, "dynq_params");
  TRY(ocl__arg_mem(L, s1, part));
  TRY(ocl__arg_int(L, s1, parts));
  TRY(ocl__arg_value(L, s1, ys, 4));
  TRY(ocl__arg_value(L, s1, yz, 1));
  TRY(ocl__arg_int(L, s1, ys >= 0));
  TRY(ocl__arg_int(L, s1, yz >= 0));
  ocl__launch_1d(s1, 1);
  if (y >= 0) {
    STEP(s2, "dynq_quantize");
    TRY(ocl__arg_value(L, s2, y, 1));
    TRY(ocl__arg_value(L, s2, x, 4));
    TRY(ocl__arg_mem(L, s2, part));
    TRY(ocl__arg_int(L, s2, parts));
    TRY(ocl__arg_int(L, s2, (int32_t)n));
    ocl__launch_1d(s2, (uint64_t)n);
  }
  return 0;
}

/* ---- Det --------------------------------------------------------------------------------- */

/* LU with partial pivoting, one work item per matrix on a scratch copy; float32 matrices are
 * factored in double where the device has cl_khr_fp64 (as the CPU plugin does), else in
 * float. */
static int lower_det(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if ((vx.dtype != TSR_DTYPE_FLOAT32 && vx.dtype != TSR_DTYPE_FLOAT64) || vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (float32 and float64 are)",
                  dtype_name(vx.dtype));
  TRY(numeric_dtype_ok(L, vx.dtype));
  if (vx.rank < 2 || vx.dims[vx.rank - 1] != vx.dims[vx.rank - 2])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input is not a (batch of) square matrices");
  int64_t batch = prod(vx.dims, 0, vx.rank - 2), dim = vx.dims[vx.rank - 1];
  if (count_of(&vy) != batch)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output is not the batch");
  if (!L->exe)
    return 0;
  bool wide = vx.dtype == TSR_DTYPE_FLOAT64 || L->dev->fp64;
  const char *name = vx.dtype == TSR_DTYPE_FLOAT64 ? "det_f64" : wide ? "det_f32d" : "det_f32";
  cl_mem a = ocl__buffer(L, (uint64_t)count_of(&vx) * (wide ? 8 : 4), NULL);
  if (!a)
    return OCL_LOWER_DEVICE_ERROR;
  uint32_t es = dtype_size(vx.dtype);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_mem(L, s, a));
  TRY(ocl__arg_int(L, s, (int32_t)batch));
  TRY(ocl__arg_int(L, s, (int32_t)dim));
  ocl__launch_1d(s, (uint64_t)batch);
  return 0;
}

/* ---- RoiAlign ---------------------------------------------------------------------------- */

/* float32, avg or max (onnxruntime's: the largest weighted corner), half_pixel or
 * output_half_pixel; one work item per output element, computed in float where the CPU plugin
 * uses double. A grid of more than 2^24 samples per bin, which the CPU refuses at run time, is
 * cut to 4096 x 4096 here; a batch index out of range gives 0. */
static int lower_roi_align(ocl_lower *L) {
  int32_t x = in_idx(L, 0), rois = in_idx(L, 1), bi = in_idx(L, 2), y = out_idx(L, 0);
  if (x < 0 || rois < 0 || bi < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expects X, rois, batch_indices and Y");
  tsr_plugin_value vx = vinfo(L, x), vr = vinfo(L, rois), vb = vinfo(L, bi), vy = vinfo(L, y);
  if (vx.dtype != TSR_DTYPE_FLOAT32 || vr.dtype != TSR_DTYPE_FLOAT32 ||
      vy.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (float32 is)",
                  dtype_name(vx.dtype));
  if (vb.dtype != TSR_DTYPE_INT64 && vb.dtype != TSR_DTYPE_INT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "batch_indices of dtype %s", dtype_name(vb.dtype));
  if (vx.rank != 4 || vr.rank != 2 || vr.dims[1] != 4 || vb.rank != 1 || vb.dims[0] != vr.dims[0])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE,
                  "X, rois, batch_indices must be [N,C,H,W], [R,4], [R]");
  const char *mode = attr_str(L, "mode", "avg");
  if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "mode '%s' not supported", mode);
  int64_t opset = L->api->node_opset(L->g, L->node);
  const char *ctm = attr_str(L, "coordinate_transformation_mode",
                             opset >= 16 ? "half_pixel" : "output_half_pixel");
  if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "coordinate_transformation_mode '%s'", ctm);
  int64_t ph = attr_int(L, "output_height", 1), pw = attr_int(L, "output_width", 1),
          ratio = attr_int(L, "sampling_ratio", 0);
  if (ratio < 0 || ratio > 4096)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "sampling_ratio %lld", (long long)ratio);
  if (vy.rank != 4 || vy.dims[0] != vr.dims[0] || vy.dims[1] != vx.dims[1] || vy.dims[2] != ph ||
      vy.dims[3] != pw)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "Y is not [R, C, output_height, output_width]");
  if (!L->exe)
    return 0;
  float scale = attr_float(L, "spatial_scale", 1.0f);
  int32_t sb;
  memcpy(&sb, &scale, sizeof sb);
  int32_t p[11] = {(int32_t)vr.dims[0],
                   (int32_t)vx.dims[0],
                   (int32_t)vx.dims[1],
                   (int32_t)vx.dims[2],
                   (int32_t)vx.dims[3],
                   (int32_t)ph,
                   (int32_t)pw,
                   (int32_t)ratio,
                   !strcmp(mode, "max"),
                   !strcmp(ctm, "half_pixel"),
                   sb};
  STEP(s, "roialign_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, rois, 4));
  TRY(ocl__arg_value(L, s, bi, dtype_size(vb.dtype)));
  TRY(ocl__arg_int(L, s, vb.dtype == TSR_DTYPE_INT64));
  TRY(ocl__arg_params(L, s, p, 11));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

int ocl__lower_misc(ocl_lower *L, const char *op) {
  if (!strcmp(op, "MeanVarianceNormalization"))
    return lower_mvn(L);
  if (!strcmp(op, "ReverseSequence"))
    return lower_reverse_sequence(L);
  if (!strcmp(op, "MaxUnpool"))
    return lower_max_unpool(L);
  if (!strcmp(op, "Einsum"))
    return lower_einsum(L);
  if (!strcmp(op, "DynamicQuantizeLinear"))
    return lower_dynamic_quantize(L);
  if (!strcmp(op, "Det"))
    return lower_det(L);
  if (!strcmp(op, "RoiAlign"))
    return lower_roi_align(L);
  return OCL_LOWER_NOT_MINE;
}
