/* Gemm and MatMul, and cpu_sgemm: the packed single-precision GEMM that Gemm, MatMul and the
 * convolutions run on.
 *
 * cpu_sgemm follows the Goto/BLIS scheme: op(A) is packed into MR-row micro-panels and op(B)
 * into NR-column micro-panels, KC deep, so that the micro-kernel streams both from contiguous,
 * aligned memory with a KC x NR panel of B resident in L1 and a block of A in L2. A constant
 * operand is packed once, in prepare() (Conv's weights, Gemm's and MatMul's constant B); A is
 * otherwise packed whole at the start of a call, and B panel by panel right before use, or not
 * at all when the caller lets the kernel read B in place (Conv over a padded input). Threads
 * split C into row blocks times column slices, each item running the whole depth, so a call
 * forks once. Other dtypes take simple exact loops: float64 in double precision, integers with
 * wrap-around arithmetic as numpy does, float16/bfloat16 staged through float32. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/nn_util.h"

#define MR CPU_SGEMM_MR
#define NR CPU_SGEMM_NR

/* The deepest packed block (see the blocked driver). */
enum { KC_MAX = 320 };

/* Below this many multiply-adds packing costs more than it saves. */
#define SGEMM_SMALL_MNK 4096
/* Below this many flops a GEMM stays on one thread. */
#define SGEMM_SERIAL_FLOPS 2.0e6

/* ---- Epilogue ------------------------------------------------------------------------- */

/* The epilogue for element (i, j) of C, whose value before it is v; ep may be NULL. */
static inline float ep_apply(const cpu_sgemm_epilogue *ep, size_t i, size_t j, float v) {
  if (!ep)
    return v;
  if (ep->row_bias)
    v += ep->row_bias[i];
  if (ep->col_bias)
    v += ep->col_bias[j];
  if (ep->addend)
    v += ep->addend[i * ep->ld_addend + j];
  return cpu_act_apply(&ep->act, v);
}

/* ---- Generic micro-kernel ------------------------------------------------------------- */

static void ukernel_generic(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                            size_t mr, size_t nr, float alpha, float beta,
                            const cpu_sgemm_tile_ep *ep) {
  float acc[MR][NR];
  memset(acc, 0, sizeof acc);
  for (size_t p = 0; p < kc; p++) {
    for (size_t i = 0; i < MR; i++) {
      float av = ap[i];
      for (size_t j = 0; j < NR; j++)
        acc[i][j] += av * bp[j];
    }
    ap += MR;
    bp += NR;
  }
  for (size_t i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    if (beta == 0.0f)
      for (size_t j = 0; j < nr; j++)
        cr[j] = alpha * acc[i][j];
    else
      for (size_t j = 0; j < nr; j++)
        cr[j] = alpha * acc[i][j] + beta * cr[j];
    if (ep)
      for (size_t j = 0; j < nr; j++) {
        float v = cr[j];
        if (ep->row_bias)
          v += ep->row_bias[i];
        if (ep->col_bias)
          v += ep->col_bias[j];
        if (ep->addend)
          v += ep->addend[i * ep->ld_addend + j];
        cr[j] = cpu_act_apply(&ep->act, v);
      }
  }
}

/* B read in place: gathers the panel's rows into the packed layout, then the kernel above. */
static void ukernel_offs_generic(size_t kc, const float *ap, const float *b, const ptrdiff_t *offs,
                                 float *c, size_t ldc, size_t mr, size_t nr, float alpha,
                                 float beta, const cpu_sgemm_tile_ep *ep) {
  float bp[KC_MAX * NR];
  for (size_t p = 0; p < kc; p++)
    memcpy(bp + p * NR, b + offs[p], NR * sizeof *bp);
  ukernel_generic(kc, ap, bp, c, ldc, mr, nr, alpha, beta, ep);
}

/* ---- Packing -------------------------------------------------------------------------- */

/* op(A)[row0 .. row0+rows) x [p0 .. p0+kc) into one MR micro-panel, zero-padded. */
static void pack_a_panel(bool ta, const float *a, size_t lda, size_t row0, size_t rows, size_t p0,
                         size_t kc, float *dst) {
  if (!ta) {
    for (size_t i = 0; i < MR; i++) {
      if (i < rows) {
        const float *src = a + (row0 + i) * lda + p0;
        for (size_t p = 0; p < kc; p++)
          dst[p * MR + i] = src[p];
      } else {
        for (size_t p = 0; p < kc; p++)
          dst[p * MR + i] = 0.0f;
      }
    }
  } else {
    for (size_t p = 0; p < kc; p++) {
      const float *src = a + (p0 + p) * lda + row0;
      float *d = dst + p * MR;
      size_t i = 0;
      for (; i < rows; i++)
        d[i] = src[i];
      for (; i < MR; i++)
        d[i] = 0.0f;
    }
  }
}

void cpu_sgemm_pack_b_rows(const float *b, size_t ldb, const float *row_scale, size_t p0,
                           size_t kc, size_t col0, size_t cols, float *dst) {
  for (size_t p = 0; p < kc; p++) {
    const float *src = b + (p0 + p) * ldb + col0;
    float f = row_scale ? row_scale[p0 + p] : 1.0f, *d = dst + p * NR;
    if (cols == NR && !row_scale) {
      memcpy(d, src, NR * sizeof *d);
    } else if (cols == NR) {
      /* Through a local copy, which the compiler knows aliases nothing: it then multiplies in
       * vectors (one float at a time, the scaling took 40% of a 144 -> 24 layer over 56x56). */
      float t[NR];
      memcpy(t, src, sizeof t);
      for (size_t j = 0; j < NR; j++)
        t[j] *= f;
      memcpy(d, t, sizeof t);
    } else {
      size_t j = 0;
      for (; j < cols; j++)
        d[j] = row_scale ? src[j] * f : src[j];
      for (; j < NR; j++)
        d[j] = 0.0f;
    }
  }
}

/* op(B)[p0 .. p0+kc) x [col0 .. col0+cols) into one NR micro-panel, zero-padded. */
static void pack_b_panel(bool tb, const float *b, size_t ldb, size_t p0, size_t kc, size_t col0,
                         size_t cols, float *dst) {
  if (!tb) {
    cpu_sgemm_pack_b_rows(b, ldb, NULL, p0, kc, col0, cols, dst);
  } else {
    for (size_t j = 0; j < NR; j++) {
      if (j < cols) {
        const float *src = b + (col0 + j) * ldb + p0;
        for (size_t p = 0; p < kc; p++)
          dst[p * NR + j] = src[p];
      } else {
        for (size_t p = 0; p < kc; p++)
          dst[p * NR + j] = 0.0f;
      }
    }
  }
}

/* ---- Packed operands ------------------------------------------------------------------ */

size_t cpu_sgemm_kc(size_t k) {
  if (k <= KC_MAX)
    return k ? k : 1;
  size_t blocks = (k + KC_MAX - 1) / KC_MAX;
  return (k + blocks - 1) / blocks;
}

static size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

size_t cpu_sgemm_packed_a_floats(size_t m, size_t k) { return round_up(m, MR) * k; }
size_t cpu_sgemm_packed_b_floats(size_t k, size_t n) { return round_up(n, NR) * k; }

/* Where the packed panel that starts at row (or column) r of the KC block at depth pc lies, in
 * a whole-matrix packing of `padded` rows (columns): the blocks before it hold pc * padded
 * floats, and each panel of this block holds MR (NR) times its depth. */
static inline size_t panel_offset(size_t padded, size_t pc, size_t kc_this, size_t r) {
  return pc * padded + r * kc_this;
}

void cpu_sgemm_pack_a(bool ta, const float *a, size_t lda, size_t m, size_t k, float *dst) {
  size_t kc = cpu_sgemm_kc(k), mpad = round_up(m, MR);
  for (size_t pc = 0; pc < k; pc += kc) {
    size_t kt = k - pc < kc ? k - pc : kc;
    for (size_t r = 0; r < m; r += MR)
      pack_a_panel(ta, a, lda, r, m - r < MR ? m - r : MR, pc, kt,
                   dst + panel_offset(mpad, pc, kt, r));
  }
}

void cpu_sgemm_pack_b(bool tb, const float *b, size_t ldb, size_t k, size_t n, float *dst) {
  size_t kc = cpu_sgemm_kc(k), npad = round_up(n, NR);
  for (size_t pc = 0; pc < k; pc += kc) {
    size_t kt = k - pc < kc ? k - pc : kc;
    for (size_t c = 0; c < n; c += NR)
      pack_b_panel(tb, b, ldb, pc, kt, c, n - c < NR ? n - c : NR,
                   dst + panel_offset(npad, pc, kt, c));
  }
}

/* ---- The blocked driver --------------------------------------------------------------- */

/* Block sizes. KC_MAX bounds the depth of a packed block: a KC x NR panel of B (at most 20 KiB)
 * stays in L1 while the micro-kernel streams MR x KC panels of A past it. The depth is balanced
 * over the blocks (cpu_sgemm_kc), so that K = 576 makes two blocks of 288, not 256 + 256 + 64.
 * MC_MAX rows of A (an MC x KC block, at most 600 KiB) stay in L2 while one thread sweeps its
 * columns. A_SCRATCH_FLOATS bounds the run-time packing of an A that was not packed ahead,
 * B_SCRATCH_FLOATS that of a whole plain B (cpu_sgemm_run). */
enum { MC_MAX = 480, A_SCRATCH_FLOATS = 1 << 22, B_SCRATCH_FLOATS = 1 << 22 };

typedef struct sgemm_job {
  const cpu_sgemm_args *g;
  cpu_sgemm_ukernel_fn uk;
  cpu_sgemm_ukernel_fn uk_short; /* for tiles of at most CPU_SGEMM_SHORT_MR rows, or NULL */
  cpu_sgemm_ukernel_offs_fn uk_offs;
  const cpu_sgemm_epilogue *ep; /* NULL when there is none */
  size_t kc;                    /* depth of every KC block but perhaps the last */
  /* Packed A: rows [a_row0, a_row0 + a_rows) of op(A), packed with a_mpad padded rows. */
  const float *ap;
  size_t a_row0, a_rows, a_mpad;
  size_t npad; /* padded columns of a pre-packed B */
  /* Items: row blocks of mc rows (within [a_row0, a_row0 + a_rows)) times column slices of ns
   * columns. */
  size_t mc, n_mb, ns, n_ns;
} sgemm_job;

/* The default B source: a plain row-major op(B). */
typedef struct plain_b {
  bool tb;
  const float *b;
  size_t ldb;
} plain_b;

static void pack_plain_b(const void *arg, size_t p0, size_t kc, size_t col0, size_t cols,
                         float *dst) {
  const plain_b *pb = arg;
  pack_b_panel(pb->tb, pb->b, pb->ldb, p0, kc, col0, cols, dst);
}

typedef struct pack_a_job {
  bool ta;
  bool avx2; /* whole panels of a plain A through cpu_sgemm_pack_a6_avx2 */
  const float *a;
  size_t lda, m, row0, k, kc, mpad, n_panels;
  float *dst;
} pack_a_job;

/* How many rows of an A not packed ahead are packed (and then computed) at a time. */
static size_t a_chunk_rows(size_t m, size_t k) {
  size_t chunk = A_SCRATCH_FLOATS / k / MR * MR;
  if (chunk < MR)
    chunk = MR; /* a very deep A: one panel of rows at a time */
  return chunk < round_up(m, MR) ? chunk : round_up(m, MR);
}

typedef struct pack_b_job {
  bool tb;
  const float *b;
  size_t ldb, n, k, kc, npad, n_panels;
  float *dst;
} pack_b_job;

/* Items are (KC block, NR panel) pairs of op(B)'s columns, laid out as cpu_sgemm_pack_b does. */
static void pack_b_task(void *arg, size_t begin, size_t end) {
  const pack_b_job *j = arg;
  for (size_t t = begin; t < end; t++) {
    size_t pc = t / j->n_panels * j->kc, c = t % j->n_panels * NR;
    size_t kt = j->k - pc < j->kc ? j->k - pc : j->kc;
    pack_b_panel(j->tb, j->b, j->ldb, pc, kt, c, j->n - c < NR ? j->n - c : NR,
                 j->dst + panel_offset(j->npad, pc, kt, c));
  }
}

/* Items are (KC block, MR panel) pairs of rows [row0, row0 + m). */
static void pack_a_task(void *arg, size_t begin, size_t end) {
  const pack_a_job *j = arg;
  for (size_t t = begin; t < end; t++) {
    size_t pc = t / j->n_panels * j->kc, r = t % j->n_panels * MR;
    size_t kt = j->k - pc < j->kc ? j->k - pc : j->kc, rows = j->m - r < MR ? j->m - r : MR;
    float *dst = j->dst + panel_offset(j->mpad, pc, kt, r);
#ifdef CPU_GEMM_HAVE_AVX2
    if (j->avx2 && !j->ta && rows == MR) {
      cpu_sgemm_pack_a6_avx2(j->a + (j->row0 + r) * j->lda + pc, j->lda, kt, dst);
      continue;
    }
#endif
    pack_a_panel(j->ta, j->a, j->lda, j->row0 + r, rows, pc, kt, dst);
  }
}

/* One item: an mc-row block of C times an ns-column slice, over the whole depth. Within a KC
 * block the B panel is the outer loop, so that it stays in L1 while the rows of A (in L2) stream
 * past it; a B that was not packed ahead is packed panel by panel right before its use. */
static void compute_task(void *arg, size_t begin, size_t end) {
  sgemm_job *j = arg;
  const cpu_sgemm_args *g = j->g;
  _Alignas(64) float bl[KC_MAX * NR];
  plain_b pb = {.tb = g->tb, .b = g->b, .ldb = g->ldb};
  cpu_sgemm_pack_b_fn pack = g->pack_b ? g->pack_b : pack_plain_b;
  const void *pack_arg = g->pack_b ? g->pack_b_arg : &pb;
  for (size_t t = begin; t < end; t++) {
    size_t im = t / j->n_ns, jn = t % j->n_ns;
    size_t r0 = j->a_row0 + im * j->mc, r1 = r0 + j->mc;
    size_t c0 = jn * j->ns, c1 = c0 + j->ns < g->n ? c0 + j->ns : g->n;
    if (r1 > j->a_row0 + j->a_rows)
      r1 = j->a_row0 + j->a_rows;
    for (size_t pc = 0; pc < g->k; pc += j->kc) {
      size_t kt = g->k - pc < j->kc ? g->k - pc : j->kc;
      float beta = pc == 0 ? g->beta : 1.0f;
      bool last = pc + kt >= g->k;
      for (size_t jr = c0, nr; jr < c1; jr += nr) {
        nr = c1 - jr < NR ? c1 - jr : NR;
        size_t cj = jr; /* the tile's first column in C */
        if (g->c_pitch) {
          size_t x = jr % g->c_pitch;
          if (x >= g->c_width) { /* dropped columns: on to the next image row */
            nr = g->c_pitch - x;
            continue;
          }
          nr = nr < g->c_width - x ? nr : g->c_width - x;
          cj = jr / g->c_pitch * g->c_width + x;
        }
        const float *bpan = NULL;
        if (g->b_rows) {
          /* Read in place: no panel; the kernel gathers its rows through b_offs. */
        } else if (g->b_packed) {
          bpan = g->b_packed + panel_offset(j->npad, pc, kt, jr);
        } else {
          pack(pack_arg, pc, kt, jr, nr, bl);
          bpan = bl;
        }
        for (size_t ir = r0; ir < r1; ir += MR) {
          size_t mr = r1 - ir < MR ? r1 - ir : MR;
          const float *apan = j->ap + panel_offset(j->a_mpad, pc, kt, ir - j->a_row0);
          float *cp = g->c + ir * g->ldc + cj;
          cpu_sgemm_tile_ep tep, *tp = NULL;
          if (j->ep && last) {
            tep.row_bias = j->ep->row_bias ? j->ep->row_bias + ir : NULL;
            tep.col_bias = j->ep->col_bias ? j->ep->col_bias + jr : NULL;
            tep.addend = j->ep->addend ? j->ep->addend + ir * j->ep->ld_addend + cj : NULL;
            tep.ld_addend = j->ep->ld_addend;
            tep.act = j->ep->act;
            tp = &tep;
          }
          if (g->b_rows)
            j->uk_offs(kt, apan, g->b_rows + jr, g->b_offs + pc, cp, g->ldc, mr, nr, g->alpha, beta,
                       tp);
          else
            (mr <= CPU_SGEMM_SHORT_MR && j->uk_short ? j->uk_short : j->uk)(
                kt, apan, bpan, cp, g->ldc, mr, nr, g->alpha, beta, tp);
        }
      }
    }
  }
}

/* Splits rows [0, rows) and columns [0, n) into items: row blocks of at most MC_MAX rows, and
 * enough items (when threads > 1) for every thread to take several, so that an uneven share
 * or a thread that starts late costs little. Columns are split first, since a row split packs
 * the same B panels once per row block. */
static void plan_items(sgemm_job *j, size_t rows, size_t n, size_t threads) {
  size_t m_pan = (rows + MR - 1) / MR, n_pan = (n + NR - 1) / NR;
  size_t target = threads > 1 ? 8 * threads : 1;
  size_t n_mb = (m_pan + MC_MAX / MR - 1) / (MC_MAX / MR);
  size_t n_ns = (target + n_mb - 1) / n_mb;
  if (n_ns > n_pan)
    n_ns = n_pan;
  if (n_ns * n_mb < target) {
    size_t want = (target + n_ns - 1) / n_ns;
    n_mb = want < m_pan ? want : m_pan;
  }
  size_t mc_pan = (m_pan + n_mb - 1) / n_mb, ns_pan = (n_pan + n_ns - 1) / n_ns;
  j->mc = mc_pan * MR;
  j->n_mb = (m_pan + mc_pan - 1) / mc_pan;
  j->ns = ns_pan * NR;
  j->n_ns = (n_pan + ns_pan - 1) / ns_pan;
}

#define A_AT(i, p) (ta ? a[(p)*lda + (i)] : a[(i)*lda + (p)])
#define B_AT(p, j) (tb ? b[(j)*ldb + (p)] : b[(p)*ldb + (j)])

/* Direct loops for tiny products and for when scratch memory cannot be had. */
static void sgemm_naive(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                        size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                        const cpu_sgemm_epilogue *ep) {
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      float s = 0.0f;
      for (size_t p = 0; p < k; p++)
        s += A_AT(i, p) * B_AT(p, j);
      float *cp = c + i * ldc + j;
      *cp = ep_apply(ep, i, j, beta == 0.0f ? alpha * s : alpha * s + beta * *cp);
    }
}

/* Matrix-vector products (m == 1 or n == 1) are memory bound: packing would read B twice. */
enum { GEMV_COLS = 1024, GEMV_ROWS = 64 };

typedef struct gemv_job {
  cpu_ctx *ctx;
  size_t n, k;
  float alpha, beta;
  const float *x;   /* the vector, contiguous, k long */
  const float *mat; /* rows of k (dot form) or of n (axpy form) */
  size_t ld;
  float *y;
  size_t incy;
  const cpu_sgemm_epilogue *ep;
  bool y_is_column; /* y[j] is C[j][0] (n == 1), else C[0][j] (m == 1) */
} gemv_job;

static inline float gemv_ep(const gemv_job *g, size_t j, float v) {
  return g->y_is_column ? ep_apply(g->ep, j, 0, v) : ep_apply(g->ep, 0, j, v);
}

/* y[j] = alpha * sum_p x[p] * mat[p][j] + beta * y[j], by column blocks. */
static void gemv_axpy_task(void *arg, size_t begin, size_t end) {
  gemv_job *g = arg;
  float acc[GEMV_COLS];
  for (size_t blk = begin; blk < end; blk++) {
    size_t j0 = blk * GEMV_COLS, len = g->n - j0 < GEMV_COLS ? g->n - j0 : GEMV_COLS;
    memset(acc, 0, len * sizeof *acc);
    for (size_t p = 0; p < g->k; p++)
      cpu_saxpy(g->ctx, len, g->x[p], g->mat + p * g->ld + j0, acc);
    for (size_t j = 0; j < len; j++) {
      float *yp = g->y + (j0 + j) * g->incy;
      *yp = gemv_ep(g, j0 + j,
                    g->beta == 0.0f ? g->alpha * acc[j] : g->alpha * acc[j] + g->beta * *yp);
    }
  }
}

/* y[j] = alpha * dot(mat[j], x) + beta * y[j]. */
static void gemv_dot_task(void *arg, size_t begin, size_t end) {
  gemv_job *g = arg;
  for (size_t j = begin; j < end; j++) {
    float s = cpu_sdot(g->ctx, g->k, g->mat + j * g->ld, g->x);
    float *yp = g->y + j * g->incy;
    *yp = gemv_ep(g, j, g->beta == 0.0f ? g->alpha * s : g->alpha * s + g->beta * *yp);
  }
}

/* Returns false when the shape is not a vector case it handles (or memory ran out). */
static bool sgemm_gemv(cpu_ctx *ctx, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                       const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                       size_t ldc, const cpu_sgemm_epilogue *ep) {
  gemv_job g = {.ctx = ctx, .k = k, .alpha = alpha, .beta = beta, .ep = ep, .y_is_column = m != 1};
  float *tmp = NULL;
  if (m == 1) {
    /* The vector is row 0 of op(A): contiguous unless A is transposed with lda > 1. */
    if (ta && lda != 1) {
      if (!(tmp = malloc(k * sizeof *tmp)))
        return false;
      for (size_t p = 0; p < k; p++)
        tmp[p] = a[p * lda];
      g.x = tmp;
    } else {
      g.x = a;
    }
    g.n = n;
    g.mat = b;
    g.ld = ldb;
    g.y = c;
    g.incy = 1;
    if (!tb) {
      size_t blocks = (n + GEMV_COLS - 1) / GEMV_COLS;
      cpu_parallel_for(ctx, blocks, nn_grain(GEMV_COLS * k, 1 << 16), gemv_axpy_task, &g);
    } else {
      cpu_parallel_for(ctx, n, nn_grain(k, 1 << 16), gemv_dot_task, &g);
    }
  } else if (n == 1 && !ta) {
    /* The vector is column 0 of op(B); rows of A are contiguous. */
    if (!tb && ldb != 1) {
      if (!(tmp = malloc(k * sizeof *tmp)))
        return false;
      for (size_t p = 0; p < k; p++)
        tmp[p] = b[p * ldb];
      g.x = tmp;
    } else {
      g.x = b;
    }
    g.n = m;
    g.mat = a;
    g.ld = lda;
    g.y = c;
    g.incy = ldc;
    cpu_parallel_for(ctx, m, nn_grain(k, 1 << 16), gemv_dot_task, &g);
  } else {
    return false;
  }
  free(tmp);
  return true;
}

void cpu_sgemm(cpu_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc) {
  cpu_sgemm_ex(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

void cpu_sgemm_ex(cpu_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                  float alpha, const float *a, size_t lda, const float *b, size_t ldb, float beta,
                  float *c, size_t ldc, const cpu_sgemm_epilogue *ep) {
  cpu_sgemm_args g = {.ta = trans_a,
                      .tb = trans_b,
                      .m = m,
                      .n = n,
                      .k = k,
                      .alpha = alpha,
                      .beta = beta,
                      .a = a,
                      .lda = lda,
                      .b = b,
                      .ldb = ldb,
                      .c = c,
                      .ldc = ldc,
                      .ep = ep};
  /* With plain operands the only failure is memory for packing; then the direct loops. */
  if (cpu_sgemm_run(ctx, &g) != 0)
    sgemm_naive(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                ep && (ep->row_bias || ep->col_bias || ep->addend || ep->act.kind != CPU_ACT_NONE)
                    ? ep
                    : NULL);
}

int cpu_sgemm_run(cpu_ctx *ctx, const cpu_sgemm_args *g) {
  size_t m = g->m, n = g->n, k = g->k;
  const cpu_sgemm_epilogue *ep = g->ep;
  if (m == 0 || n == 0)
    return 0;
  if (ep && !ep->row_bias && !ep->col_bias && !ep->addend && ep->act.kind == CPU_ACT_NONE)
    ep = NULL;
  if (k == 0 || g->alpha == 0.0f) {
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) {
        size_t cj = j; /* under a window, where column j lands in C */
        if (g->c_pitch) {
          if (j % g->c_pitch >= g->c_width)
            continue;
          cj = j / g->c_pitch * g->c_width + j % g->c_pitch;
        }
        float *cij = g->c + i * g->ldc + cj;
        float v = g->beta == 0.0f ? 0.0f : g->beta * *cij;
        if (ep) {
          if (ep->row_bias)
            v += ep->row_bias[i];
          if (ep->col_bias)
            v += ep->col_bias[j];
          if (ep->addend)
            v += ep->addend[i * ep->ld_addend + cj];
          v = cpu_act_apply(&ep->act, v);
        }
        *cij = v;
      }
    return 0;
  }
  bool plain = g->a && g->b && !g->pack_b && !g->b_rows && !g->c_pitch;
  if (plain && (double)m * (double)n * (double)k <= SGEMM_SMALL_MNK) {
    sgemm_naive(g->ta, g->tb, m, n, k, g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, g->c, g->ldc,
                ep);
    return 0;
  }
  if (plain && (m == 1 || n == 1) &&
      sgemm_gemv(ctx, g->ta, g->tb, m, n, k, g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, g->c,
                 g->ldc, ep))
    return 0;

  sgemm_job j = {.g = g,
                 .uk = ukernel_generic,
                 .uk_offs = ukernel_offs_generic,
                 .ep = ep,
                 .kc = cpu_sgemm_kc(k)};
  j.npad = round_up(n, NR);
  size_t threads = cpu_thread_count(ctx);
  if (2.0 * (double)m * (double)n * (double)k < SGEMM_SERIAL_FLOPS)
    threads = 1;
  /* Scratch, from the executable's slot (cpu_scratch_take): a whole plain B packed (below),
   * then rows of A (chunk of them at a time) where A was not packed ahead. */
  size_t chunk = g->a_packed ? 0 : a_chunk_rows(m, k), b_floats = 0;
  /* A plain B is packed panel by panel inside the items, once per row block. Where there is
   * more than one row block (more rows than MC_MAX, rows split among threads, or A packed in
   * chunks) each panel would be packed that many times, each time reading kc rows of B a whole
   * row pitch apart; then all of B is packed once here instead, by all threads (sgemm 1024^3
   * at one thread: 0.90 -> 0.97 of OpenBLAS, bench/sgemm_bench). */
  if (g->b && !g->b_packed && !g->pack_b && !g->b_rows) {
    plan_items(&j, chunk && chunk < m ? chunk : m, n, threads);
    if ((j.n_mb > 1 || (chunk && chunk < m)) && j.npad * k <= B_SCRATCH_FLOATS)
      b_floats = j.npad * k;
  }
  bool fresh;
  float *scratch = NULL;
  if (chunk || b_floats) {
    scratch = cpu_scratch_take(ctx, (b_floats + chunk * k) * sizeof(float), &fresh);
    if (!scratch && b_floats) {
      b_floats = 0; /* B as it comes, panel by panel, then: only A's packing needs memory */
      if (chunk)
        scratch = cpu_scratch_take(ctx, chunk * k * sizeof(float), &fresh);
    }
    if (!scratch && chunk)
      return -1;
  }
  cpu_sgemm_args with_b;
  if (b_floats) {
    pack_b_job bj = {.tb = g->tb,
                     .b = g->b,
                     .ldb = g->ldb,
                     .n = n,
                     .k = k,
                     .kc = j.kc,
                     .npad = j.npad,
                     .n_panels = j.npad / NR,
                     .dst = scratch};
    size_t panels = bj.n_panels * ((k + j.kc - 1) / j.kc);
    cpu_parallel_for(ctx, panels, threads > 1 ? nn_grain(NR * j.kc, 1 << 14) : panels, pack_b_task,
                     &bj);
    with_b = *g;
    with_b.b_packed = scratch;
    g = &with_b;
    j.g = g;
  }
#ifdef CPU_GEMM_HAVE_AVX2
  if (ctx && ctx->isa == CPU_ISA_AVX2_FMA) {
    /* Any A given packed is prefetched, the transposed 1x1 product's X^T (packed in this run)
     * too: without, MNASNet's 1x1 layers over 7x7 took 0.01-0.05 ms longer each (per-node
     * minima, alternating, twice). */
    j.uk = cpu_sgemm_ukernel_avx2(g->a_packed != NULL, g->b_packed != NULL);
    j.uk_short = cpu_sgemm_ukernel_short_avx2(g->a_packed != NULL, g->b_packed != NULL);
    j.uk_offs = cpu_sgemm_ukernel_offs_avx2(g->a_packed != NULL);
  }
#endif
  if (g->a_packed) {
    j.ap = g->a_packed;
    j.a_row0 = 0;
    j.a_rows = m;
    j.a_mpad = round_up(m, MR);
    plan_items(&j, m, n, threads);
    size_t items = j.n_mb * j.n_ns;
    cpu_parallel_for(ctx, items, 1, compute_task, &j);
    cpu_scratch_give(ctx, scratch);
    return 0;
  }
  /* A was not packed ahead: pack it here, all of it when that fits the scratch bound, else in
   * row chunks, each packed by all threads and then computed. */
  float *a_scratch = scratch + b_floats;
  for (size_t row0 = 0; row0 < m; row0 += chunk) {
    size_t rows = m - row0 < chunk ? m - row0 : chunk;
    pack_a_job pj = {.ta = g->ta,
                     .avx2 = ctx && ctx->isa == CPU_ISA_AVX2_FMA,
                     .a = g->a,
                     .lda = g->lda,
                     .m = rows,
                     .row0 = row0,
                     .k = k,
                     .kc = j.kc,
                     .mpad = round_up(rows, MR),
                     .n_panels = (rows + MR - 1) / MR,
                     .dst = a_scratch};
    size_t panels = pj.n_panels * ((k + j.kc - 1) / j.kc);
    cpu_parallel_for(ctx, panels, threads > 1 ? nn_grain(MR * j.kc, 1 << 14) : panels, pack_a_task,
                     &pj);
    j.ap = a_scratch;
    j.a_row0 = row0;
    j.a_rows = rows;
    j.a_mpad = pj.mpad;
    plan_items(&j, rows, n, threads);
    size_t items = j.n_mb * j.n_ns;
    cpu_parallel_for(ctx, items, threads > 1 ? 1 : items, compute_task, &j);
  }
  cpu_scratch_give(ctx, scratch);
  return 0;
}

/* ---- Typed loops for the dtypes that do not go through cpu_sgemm ---------------------- */

static bool gemm_dtype_ok(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_FLOAT32:
  case TSR_DTYPE_FLOAT64:
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16:
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_INT64:
  case TSR_DTYPE_UINT32:
  case TSR_DTYPE_UINT64: return true;
  default: return false;
  }
}

static bool is_int_dtype(uint32_t dt) {
  return dt == TSR_DTYPE_INT32 || dt == TSR_DTYPE_INT64 || dt == TSR_DTYPE_UINT32 ||
         dt == TSR_DTYPE_UINT64;
}

/* Integers are computed modulo 2^64 and truncated, which is what numpy's wrap-around gives. */
static inline uint64_t ld_u64(const void *p, uint32_t dt, size_t i) {
  switch (dt) {
  case TSR_DTYPE_INT32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
  case TSR_DTYPE_UINT32: return ((const uint32_t *)p)[i];
  case TSR_DTYPE_INT64: return (uint64_t)((const int64_t *)p)[i];
  default: return ((const uint64_t *)p)[i];
  }
}

static inline void st_u64(void *p, uint32_t dt, size_t i, uint64_t v) {
  switch (dt) {
  case TSR_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
  case TSR_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
  case TSR_DTYPE_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
  default: ((uint64_t *)p)[i] = v; break;
  }
}

static inline bool is_signed_int(uint32_t dt) {
  return dt == TSR_DTYPE_INT32 || dt == TSR_DTYPE_INT64;
}

/* Converts a double to the integer dtype, saturating instead of overflowing. */
static uint64_t f64_to_u64_sat(double v, uint32_t dt) {
  if (isnan(v))
    return 0;
  if (is_signed_int(dt)) {
    if (v <= -9223372036854775808.0)
      return (uint64_t)INT64_MIN;
    if (v >= 9223372036854775807.0)
      return (uint64_t)INT64_MAX;
    return (uint64_t)(int64_t)v;
  }
  if (v <= 0)
    return 0;
  if (v >= 18446744073709551615.0)
    return UINT64_MAX;
  return (uint64_t)v;
}

static double u64_to_f64(uint64_t v, uint32_t dt) {
  return is_signed_int(dt) ? (double)(int64_t)v : (double)v;
}

/* One output row of a product in a typed loop: y[row, 0..n) = sum_p A(row, p) B(p, j),
 * then y = alpha * y + beta * c via `epilogue` (Gemm) or plain (MatMul). */
typedef struct typed_mm {
  uint32_t dtype;
  bool ta, tb;
  size_t m, n, k, lda, ldb;
  /* Per batch: element offsets of A, B and Y. */
  const size_t *a_off, *b_off;
  const void *a, *b;
  void *y;
  /* Gemm epilogue y = alpha * AB + beta * C, with C's broadcast strides (C may be NULL). */
  bool epilogue;
  const void *c;
  size_t c_rs, c_cs;
  double alpha, beta;
  bool int_scale; /* alpha and beta are small integers: keep integer arithmetic exact */
  int64_t ialpha, ibeta;
  atomic_int failed;
} typed_mm;

static void typed_row_f64(const typed_mm *t, size_t bt, size_t i, double *acc) {
  const double *a = (const double *)t->a + t->a_off[bt], *b = (const double *)t->b + t->b_off[bt];
  double *y = (double *)t->y + (bt * t->m + i) * t->n;
  size_t n = t->n, lda = t->lda, ldb = t->ldb;
  memset(acc, 0, n * sizeof *acc);
  for (size_t p = 0; p < t->k; p++) {
    double av = t->ta ? a[p * lda + i] : a[i * lda + p];
    if (t->tb)
      for (size_t j = 0; j < n; j++)
        acc[j] += av * b[j * ldb + p];
    else
      for (size_t j = 0; j < n; j++)
        acc[j] += av * b[p * ldb + j];
  }
  const double *c = t->c;
  for (size_t j = 0; j < n; j++) {
    double v = acc[j];
    if (t->epilogue)
      v = t->alpha * v + (c ? t->beta * c[i * t->c_rs + j * t->c_cs] : 0.0);
    y[j] = v;
  }
}

static void typed_row_int(const typed_mm *t, size_t bt, size_t i, uint64_t *acc) {
  uint32_t dt = t->dtype;
  size_t ao = t->a_off[bt], bo = t->b_off[bt], yo = (bt * t->m + i) * t->n;
  size_t n = t->n, lda = t->lda, ldb = t->ldb;
  memset(acc, 0, n * sizeof *acc);
  for (size_t p = 0; p < t->k; p++) {
    uint64_t av = ld_u64(t->a, dt, ao + (t->ta ? p * lda + i : i * lda + p));
    for (size_t j = 0; j < n; j++)
      acc[j] += av * ld_u64(t->b, dt, bo + (t->tb ? j * ldb + p : p * ldb + j));
  }
  for (size_t j = 0; j < n; j++) {
    uint64_t v = acc[j];
    if (t->epilogue) {
      uint64_t cv = t->c ? ld_u64(t->c, dt, i * t->c_rs + j * t->c_cs) : 0;
      if (t->int_scale)
        v = (uint64_t)t->ialpha * v + (uint64_t)t->ibeta * cv;
      else
        v = f64_to_u64_sat(t->alpha * u64_to_f64(v, dt) + t->beta * u64_to_f64(cv, dt), dt);
    }
    st_u64(t->y, dt, yo + j, v);
  }
}

static void typed_task(void *arg, size_t begin, size_t end) {
  typed_mm *t = arg;
  bool is_f64 = t->dtype == TSR_DTYPE_FLOAT64;
  void *acc = malloc((t->n ? t->n : 1) * 8);
  if (!acc) {
    atomic_store(&t->failed, 1);
    return;
  }
  for (size_t r = begin; r < end; r++) {
    size_t bt = r / t->m, i = r % t->m;
    if (is_f64)
      typed_row_f64(t, bt, i, acc);
    else
      typed_row_int(t, bt, i, acc);
  }
  free(acc);
}

static int run_typed(cpu_ctx *ctx, typed_mm *t, size_t batches) {
  size_t rows = batches * t->m;
  if (rows == 0 || t->n == 0)
    return 0;
  atomic_init(&t->failed, 0);
  cpu_parallel_for(ctx, rows, nn_grain(t->n * (t->k + 1), 1 << 15), typed_task, t);
  return atomic_load(&t->failed) ? cpu_fail(ctx, "out of memory") : 0;
}

/* ---- Gemm ----------------------------------------------------------------------------- */

/* Gemm's and MatMul's state from prepare(): a constant float32 B packed once for the GEMM
 * (cpu_sgemm_pack_b), so that a run packs only A. The graph keeps its own copy of B (the plugin
 * ABI gives compile() constant data read-only and keeps it), so a packed B costs its size once
 * more, its columns padded to a multiple of 16. */
typedef struct mm_state {
  float *b_packed;
} mm_state;

static int mm_state_new(bool tb, const float *b, size_t k, size_t n, void **out_state, char *msg,
                        size_t size) {
  size_t floats = cpu_sgemm_packed_b_floats(k, n);
  mm_state *st = calloc(1, sizeof *st);
  if (!st || !(st->b_packed = nn_alloc_aligned(floats, sizeof(float)))) {
    free(st);
    snprintf(msg, size, "out of memory packing B (%zu floats)", floats);
    return -1;
  }
  cpu_sgemm_pack_b(tb, b, tb ? k : n, k, n, st->b_packed);
  *out_state = st;
  return 0;
}

static void mm_release(void *state) {
  mm_state *st = state;
  if (st)
    free(st->b_packed);
  free(st);
}

typedef struct gemm_plan {
  bool ta, tb;
  size_t m, n, k;
  float alpha, beta;
  bool has_c;
  size_t c_rs, c_cs; /* element strides of C's rows and columns after broadcasting (0 or not) */
  cpu_act act;       /* fused by core/passes.c ("tessera.activation") */
} gemm_plan;

static tsr_plugin_reason gemm_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                    gemm_plan *p, char *msg, size_t size) {
  char s1[96], s2[96];
  memset(p, 0, sizeof *p);
  if (n->n_in < 2 || n->n_out < 1 || !in[0].present || !in[1].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs A and B");
  uint32_t dt = in[0].dtype;
  if (!gemm_dtype_ok(dt))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  p->has_c = n->n_in > 2 && in[2].present;
  if (in[1].dtype != dt || out[0].dtype != dt || (p->has_c && in[2].dtype != dt))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "inputs and output must all be %s",
                      cpu_dtype_name(dt));
  if (in[0].rank != 2 || in[1].rank != 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "A %s and B %s must be matrices",
                      nn_dims_str(s1, sizeof s1, in[0].rank, in[0].dims),
                      nn_dims_str(s2, sizeof s2, in[1].rank, in[1].dims));
  tsr_plugin_reason r = cpu_act_from_node(n, &p->act, msg, size);
  if (r)
    return r;
  if (p->act.kind != CPU_ACT_NONE && dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT16 &&
      dt != TSR_DTYPE_BFLOAT16)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "tessera.activation is implemented for float32 and half types, not %s",
                      cpu_dtype_name(dt));
  p->ta = cpu_attr_int(n, "transA", 0) != 0;
  p->tb = cpu_attr_int(n, "transB", 0) != 0;
  p->alpha = cpu_attr_float(n, "alpha", 1.0f);
  p->beta = cpu_attr_float(n, "beta", 1.0f);
  int64_t m = in[0].dims[p->ta ? 1 : 0], k = in[0].dims[p->ta ? 0 : 1];
  int64_t kb = in[1].dims[p->tb ? 1 : 0], nn = in[1].dims[p->tb ? 0 : 1];
  if (k != kb)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "inner dims differ: op(A) is %lldx%lld, op(B) is %lldx%lld", (long long)m,
                      (long long)k, (long long)kb, (long long)nn);
  if (out[0].rank != 2 || out[0].dims[0] != m || out[0].dims[1] != nn)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output is %s, expected [%lld,%lld]",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims), (long long)m,
                      (long long)nn);
  p->m = (size_t)m;
  p->n = (size_t)nn;
  p->k = (size_t)k;
  if (p->has_c) {
    const cpu_tensor *c = &in[2];
    int64_t cm = 1, cn = 1;
    if (c->rank > 2)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "C has rank %u, at most 2 allowed",
                        c->rank);
    if (c->rank == 2)
      cm = c->dims[0];
    if (c->rank >= 1)
      cn = c->dims[c->rank - 1];
    if ((cm != 1 && cm != m) || (cn != 1 && cn != nn))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "C %s does not broadcast to [%lld,%lld]",
                        nn_dims_str(s1, sizeof s1, c->rank, c->dims), (long long)m, (long long)nn);
    p->c_rs = cm == 1 ? 0 : (size_t)cn;
    p->c_cs = cn == 1 ? 0 : 1;
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason gemm_check(const cpu_node *n, char *msg, size_t size) {
  gemm_plan p;
  return gemm_setup(n, n->in, n->out, &p, msg, size);
}

/* Packs a constant float32 B worth packing: one with at least two rows of A to meet it (a
 * single row takes the matrix-vector path, which reads B as it lies). */
static int gemm_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  *out_state = NULL;
  gemm_plan p;
  if (gemm_setup(n, n->in, n->out, &p, msg, size) != TSR_PLUGIN_REASON_NONE)
    return 0; /* check() has refused it already; run() reports the same */
  const cpu_tensor *b = &n->in[1];
  if (b->dtype != TSR_DTYPE_FLOAT32 || !b->is_const || !b->data || p.m < 2 || p.n == 0 || p.k == 0)
    return 0;
  return mm_state_new(p.tb, b->data, p.k, p.n, out_state, msg, size);
}

/* A C that is one row ([N] or [1, N], broadcast down the rows) or one column ([M, 1]) is
 * added by the GEMM's epilogue instead of being copied into Y first; so is the activation. */
static int gemm_f32(cpu_ctx *ctx, const gemm_plan *p, const float *a, const float *b,
                    const float *b_packed, const float *c, float *y) {
  float beta = 0.0f;
  cpu_sgemm_epilogue ep = {.act = p->act};
  float *scaled = NULL;
  bool row = c && p->c_rs == 0 && p->c_cs == 1, col = c && p->c_rs == 1 && p->c_cs == 0;
  if (c && p->beta != 0.0f && (row || col)) {
    const float *bias = c;
    size_t len = row ? p->n : p->m;
    if (p->beta != 1.0f) {
      if (!(scaled = malloc(len * sizeof *scaled)))
        return -1;
      for (size_t i = 0; i < len; i++)
        scaled[i] = p->beta * c[i];
      bias = scaled;
    }
    *(row ? &ep.col_bias : &ep.row_bias) = bias;
  } else if (c && p->beta != 0.0f) {
    for (size_t i = 0; i < p->m; i++)
      for (size_t j = 0; j < p->n; j++)
        y[i * p->n + j] = c[i * p->c_rs + j * p->c_cs];
    beta = p->beta;
  }
  cpu_sgemm_args ga = {.ta = p->ta,
                       .tb = p->tb,
                       .m = p->m,
                       .n = p->n,
                       .k = p->k,
                       .alpha = p->alpha,
                       .beta = beta,
                       .a = a,
                       .lda = p->ta ? p->m : p->k,
                       .b = b,
                       .ldb = p->tb ? p->k : p->n,
                       .b_packed = b_packed,
                       .c = y,
                       .ldc = p->n,
                       .ep = &ep};
  int rc = cpu_sgemm_run(ctx, &ga);
  free(scaled);
  return rc;
}

static int gemm_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  char msg[256];
  gemm_plan p;
  if (gemm_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  uint32_t dt = in[0].dtype;
  const cpu_tensor *c = p.has_c ? &in[2] : NULL;
  if (dt == TSR_DTYPE_FLOAT32)
    return gemm_f32(ctx, &p, in[0].data, in[1].data,
                    state ? ((const mm_state *)state)->b_packed : NULL, c ? c->data : NULL,
                    out[0].data)
               ? cpu_fail(ctx, "out of memory")
               : 0;
  if (dt == TSR_DTYPE_FLOAT16 || dt == TSR_DTYPE_BFLOAT16) {
    float *a = nn_f32_copy(&in[0]), *b = nn_f32_copy(&in[1]);
    float *cf = c ? nn_f32_copy(c) : NULL;
    float *y = malloc(out[0].count * sizeof *y);
    int rc = -1;
    if (a && b && y && (!c || cf)) {
      rc = gemm_f32(ctx, &p, a, b, NULL, cf, y);
      nn_f32_store(&out[0], y);
    }
    free(a), free(b), free(cf), free(y);
    return rc == 0 ? 0 : cpu_fail(ctx, "out of memory");
  }
  size_t zero = 0;
  typed_mm t = {.dtype = dt,
                .ta = p.ta,
                .tb = p.tb,
                .m = p.m,
                .n = p.n,
                .k = p.k,
                .lda = p.ta ? p.m : p.k,
                .ldb = p.tb ? p.k : p.n,
                .a_off = &zero,
                .b_off = &zero,
                .a = in[0].data,
                .b = in[1].data,
                .y = out[0].data,
                .alpha = p.alpha,
                .beta = p.beta};
  if (c && p.beta != 0.0f) {
    t.c = c->data;
    t.c_rs = p.c_rs;
    t.c_cs = p.c_cs;
  }
  t.epilogue = t.c || p.alpha != 1.0f;
  if (is_int_dtype(dt)) {
    double fa = t.alpha, fb = t.beta;
    t.int_scale =
        fa == floor(fa) && fb == floor(fb) && fabs(fa) < 2147483648.0 && fabs(fb) < 2147483648.0;
    t.ialpha = (int64_t)(t.int_scale ? fa : 0);
    t.ibeta = (int64_t)(t.int_scale ? fb : 0);
  }
  return run_typed(ctx, &t, 1);
}

/* ---- MatMul --------------------------------------------------------------------------- */

enum { MM_MAX_BATCH_RANK = 16 };

typedef struct matmul_plan {
  size_t m, n, k;
  size_t batches;
  int brank;                                               /* batch rank of the output */
  int64_t bdims[MM_MAX_BATCH_RANK];                        /* output batch dims */
  size_t a_bs[MM_MAX_BATCH_RANK], b_bs[MM_MAX_BATCH_RANK]; /* batch strides, 0 = broadcast */
  bool b_shared; /* B has no batch extent: A's batches fold into one tall product */
} matmul_plan;

static tsr_plugin_reason matmul_setup(const cpu_node *n, const cpu_tensor *in,
                                      const cpu_tensor *out, matmul_plan *p, char *msg,
                                      size_t size) {
  char s1[96], s2[96], s3[96], s4[96];
  memset(p, 0, sizeof *p);
  if (n->n_in < 2 || n->n_out < 1 || !in[0].present || !in[1].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs A and B");
  uint32_t dt = in[0].dtype;
  if (!gemm_dtype_ok(dt))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  if (in[1].dtype != dt || out[0].dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "inputs and output must all be %s",
                      cpu_dtype_name(dt));
  const cpu_tensor *a = &in[0], *b = &in[1];
  if (a->rank < 1 || b->rank < 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "MatMul of a scalar");
  int ar = (int)a->rank, br = (int)b->rank;
  int64_t m = ar >= 2 ? a->dims[ar - 2] : 1, k = a->dims[ar - 1];
  int64_t kb = br >= 2 ? b->dims[br - 2] : b->dims[0], nn = br >= 2 ? b->dims[br - 1] : 1;
  nn_dims_str(s1, sizeof s1, a->rank, a->dims);
  nn_dims_str(s2, sizeof s2, b->rank, b->dims);
  if (k != kb)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "inner dims differ: A %s, B %s", s1, s2);
  int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0;
  int obr = abr > bbr ? abr : bbr;
  if (obr > MM_MAX_BATCH_RANK)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "batch rank %d above %d", obr,
                      MM_MAX_BATCH_RANK);
  /* Expected output: broadcast batch dims, then M unless A is 1-D, then N unless B is 1-D. */
  int64_t want[MM_MAX_BATCH_RANK + 2];
  int wr = 0;
  size_t as = (size_t)(m * k), bs = (size_t)(k * nn);
  p->batches = 1;
  for (int d = obr - 1; d >= 0; d--) {
    int ai = d - (obr - abr), bi = d - (obr - bbr);
    int64_t ad = ai >= 0 ? a->dims[ai] : 1, bd = bi >= 0 ? b->dims[bi] : 1;
    if (ad != bd && ad != 1 && bd != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "batch dims of A %s and B %s do not broadcast", s1, s2);
    int64_t od = ad == 1 ? bd : ad;
    p->bdims[d] = od;
    p->a_bs[d] = ad == 1 ? 0 : as;
    p->b_bs[d] = bd == 1 ? 0 : bs;
    as *= (size_t)ad;
    bs *= (size_t)bd;
    p->batches *= (size_t)od;
  }
  p->brank = obr;
  for (int d = 0; d < obr; d++)
    want[wr++] = p->bdims[d];
  if (ar >= 2)
    want[wr++] = m;
  if (br >= 2)
    want[wr++] = nn;
  bool same = (int)out[0].rank == wr;
  for (int d = 0; same && d < wr; d++)
    same = out[0].dims[d] == want[d];
  if (!same)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "output is %s, expected %s for A %s, B %s",
                      nn_dims_str(s3, sizeof s3, out[0].rank, out[0].dims),
                      nn_dims_str(s4, sizeof s4, (uint32_t)wr, want), s1, s2);
  p->m = (size_t)m;
  p->n = (size_t)nn;
  p->k = (size_t)k;
  p->b_shared = true;
  /* A batch dim where A broadcasts over B's batches cannot fold; one of size 1 can. */
  for (int d = 0; d < obr; d++)
    if (p->b_bs[d] != 0 || (p->a_bs[d] == 0 && p->bdims[d] != 1))
      p->b_shared = false;
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason matmul_check(const cpu_node *n, char *msg, size_t size) {
  matmul_plan p;
  return matmul_setup(n, n->in, n->out, &p, msg, size);
}

/* Packs a constant float32 matrix B ([K, N]) that every batch of A shares (see gemm_prepare). */
static int matmul_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  *out_state = NULL;
  matmul_plan p;
  if (matmul_setup(n, n->in, n->out, &p, msg, size) != TSR_PLUGIN_REASON_NONE)
    return 0; /* check() has refused it already; run() reports the same */
  const cpu_tensor *b = &n->in[1];
  if (b->dtype != TSR_DTYPE_FLOAT32 || !b->is_const || !b->data || b->rank != 2 || !p.b_shared ||
      p.batches * p.m < 2 || p.n == 0 || p.k == 0)
    return 0;
  return mm_state_new(false, b->data, p.k, p.n, out_state, msg, size);
}

static void batch_offsets(const matmul_plan *p, size_t bt, size_t *ao, size_t *bo) {
  *ao = *bo = 0;
  for (int d = p->brank - 1; d >= 0; d--) {
    size_t idx = bt % (size_t)p->bdims[d];
    bt /= (size_t)p->bdims[d];
    *ao += idx * p->a_bs[d];
    *bo += idx * p->b_bs[d];
  }
}

typedef struct mm_batch_job {
  cpu_ctx *ctx;
  const matmul_plan *p;
  const float *a, *b;
  float *y;
} mm_batch_job;

/* Many small products: one thread per product, each GEMM on its own thread. */
static void mm_batch_task(void *arg, size_t begin, size_t end) {
  mm_batch_job *j = arg;
  cpu_ctx serial = *j->ctx;
  serial.pool = NULL;
  const matmul_plan *p = j->p;
  for (size_t bt = begin; bt < end; bt++) {
    size_t ao, bo;
    batch_offsets(p, bt, &ao, &bo);
    cpu_sgemm(&serial, false, false, p->m, p->n, p->k, 1.0f, j->a + ao, p->k, j->b + bo, p->n, 0.0f,
              j->y + bt * p->m * p->n, p->n);
  }
}

static int matmul_f32(cpu_ctx *ctx, const matmul_plan *p, const float *a, const float *b,
                      const float *b_packed, const cpu_sgemm_epilogue *ep, float *y) {
  if (p->b_shared) {
    /* [..., M, K] x [K, N]: the batches of A stack into one (batches*M) x K matrix. */
    cpu_sgemm_args ga = {.m = p->batches * p->m,
                         .n = p->n,
                         .k = p->k,
                         .alpha = 1.0f,
                         .a = a,
                         .lda = p->k,
                         .b = b,
                         .ldb = p->n,
                         .b_packed = b_packed,
                         .c = y,
                         .ldc = p->n,
                         .ep = ep};
    return cpu_sgemm_run(ctx, &ga);
  }
  double flops = 2.0 * (double)p->m * (double)p->n * (double)p->k;
  mm_batch_job j = {.ctx = ctx, .p = p, .a = a, .b = b, .y = y};
  if (p->batches >= 2 * cpu_thread_count(ctx) || flops < SGEMM_SERIAL_FLOPS) {
    size_t grain = nn_grain((size_t)(flops / 2 + 1), 1 << 16);
    cpu_parallel_for(ctx, p->batches, grain, mm_batch_task, &j);
    return 0;
  }
  for (size_t bt = 0; bt < p->batches; bt++) {
    size_t ao, bo;
    batch_offsets(p, bt, &ao, &bo);
    cpu_sgemm(ctx, false, false, p->m, p->n, p->k, 1.0f, a + ao, p->k, b + bo, p->n, 0.0f,
              y + bt * p->m * p->n, p->n);
  }
  return 0;
}

static int matmul_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  char msg[256];
  matmul_plan p;
  if (matmul_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  uint32_t dt = in[0].dtype;
  const float *b_packed = state ? ((const mm_state *)state)->b_packed : NULL;
  if (n->col_bias) {
    /* The Add of a bias vector (and an activation) that the plugin took in (fuse_nodes in
     * plugin.c); cpu_matmul_bias_ok said yes at compile time. */
    cpu_sgemm_epilogue ep = {.col_bias = in[2].data};
    ep.act.kind = cpu_fused_act_kind(n->fused_act);
    if (dt != TSR_DTYPE_FLOAT32 || !p.b_shared || n->n_in < 3 || in[2].count != p.n)
      return cpu_fail(ctx, "fused bias of %zu values for %zu columns", in[2].count, p.n);
    /* Planned for the Add's (or the activation's) output after A had died, the output may lie
     * on A: then it is made apart. */
    const char *a0 = in[0].data, *y0 = out[0].data;
    float *y = out[0].data, *tmp = NULL;
    if (nn_bytes_overlap(y0, out[0].nbytes, a0, in[0].nbytes)) {
      if (!(tmp = malloc(out[0].count * sizeof *tmp)))
        return cpu_fail(ctx, "out of memory");
      y = tmp;
    }
    int rc = matmul_f32(ctx, &p, in[0].data, in[1].data, b_packed, &ep, y);
    if (tmp && rc == 0)
      memcpy(out[0].data, tmp, out[0].count * sizeof *tmp);
    free(tmp);
    return rc ? cpu_fail(ctx, "out of memory") : 0;
  }
  if (dt == TSR_DTYPE_FLOAT32)
    return matmul_f32(ctx, &p, in[0].data, in[1].data, b_packed, NULL, out[0].data)
               ? cpu_fail(ctx, "out of memory")
               : 0;
  if (dt == TSR_DTYPE_FLOAT16 || dt == TSR_DTYPE_BFLOAT16) {
    float *a = nn_f32_copy(&in[0]), *b = nn_f32_copy(&in[1]);
    float *y = malloc(out[0].count * sizeof *y);
    int rc = -1;
    if (a && b && y) {
      rc = matmul_f32(ctx, &p, a, b, NULL, NULL, y);
      nn_f32_store(&out[0], y);
    }
    free(a), free(b), free(y);
    return rc == 0 ? 0 : cpu_fail(ctx, "out of memory");
  }
  size_t *offs = malloc(2 * p.batches * sizeof *offs);
  if (!offs)
    return cpu_fail(ctx, "out of memory");
  for (size_t bt = 0; bt < p.batches; bt++)
    batch_offsets(&p, bt, &offs[bt], &offs[p.batches + bt]);
  typed_mm t = {.dtype = dt,
                .m = p.m,
                .n = p.n,
                .k = p.k,
                .lda = p.k,
                .ldb = p.n,
                .a_off = offs,
                .b_off = offs + p.batches,
                .a = in[0].data,
                .b = in[1].data,
                .y = out[0].data};
  int rc = run_typed(ctx, &t, p.batches);
  free(offs);
  return rc;
}

bool cpu_matmul_bias_ok(const cpu_node *n) {
  char msg[256];
  matmul_plan p;
  return strcmp(n->op_type, "MatMul") == 0 &&
         matmul_setup(n, n->in, n->out, &p, msg, sizeof msg) == TSR_PLUGIN_REASON_NONE &&
         n->in[0].dtype == TSR_DTYPE_FLOAT32 && n->in[1].is_const && n->in[1].rank == 2 &&
         p.b_shared;
}

/* The path cpu_sgemm_run takes for an m x k by k x n product (per batch), as prepare() left
 * the state: the packed micro-kernel with B packed once at load (a constant B), or else, with
 * both operands plain, the direct loops of a small product, the matrix-vector loops, or the
 * micro-kernel packing both per run. */
static void mm_note_of(const mm_state *st, size_t m, size_t n, size_t k, cpu_isa isa, char *buf,
                       size_t size) {
  const char *on = isa == CPU_ISA_AVX2_FMA ? "AVX2" : "generic C";
  if (st && st->b_packed)
    snprintf(buf, size, "sgemm 6x16 (%s), B packed at load", on);
  else if ((double)m * (double)n * (double)k <= SGEMM_SMALL_MNK)
    snprintf(buf, size, "direct loops (a small product)");
  else if (m == 1 || n == 1)
    snprintf(buf, size, "matrix-vector loops"); /* plain C, no ISA path of their own */
  else
    snprintf(buf, size, "sgemm 6x16 (%s), A and B packed per run", on);
}

static void gemm_note(const cpu_node *n, const void *state, cpu_isa isa, char *buf, size_t size) {
  gemm_plan p;
  char msg[160];
  buf[0] = '\0';
  if (gemm_setup(n, n->in, n->out, &p, msg, sizeof msg) == TSR_PLUGIN_REASON_NONE)
    mm_note_of(state, p.m, p.n, p.k, isa, buf, size);
}

static void matmul_note(const cpu_node *n, const void *state, cpu_isa isa, char *buf, size_t size) {
  matmul_plan p;
  char msg[160];
  buf[0] = '\0';
  if (matmul_setup(n, n->in, n->out, &p, msg, sizeof msg) == TSR_PLUGIN_REASON_NONE)
    mm_note_of(state, p.b_shared ? p.m * p.batches : p.m, p.n, p.k, isa, buf, size);
}

static const cpu_op gemm_ops[] = {
    {"Gemm", "", 7, 17, gemm_check, gemm_prepare, gemm_run, mm_release, NULL, gemm_note},
    {"MatMul", "", 1, 17, matmul_check, matmul_prepare, matmul_run, mm_release, NULL, matmul_note},
};

const cpu_op_list cpu_ops_gemm = {gemm_ops, sizeof gemm_ops / sizeof gemm_ops[0]};
