/* Helpers shared by the neural-network kernel files (gemm.c, conv.c, pool.c, norm.c): staging
 * of half-precision and small-integer tensors through float32, aligned scratch memory, and the
 * sliding-window attributes (kernel_shape, strides, dilations, pads, auto_pad) of Conv and the
 * pools. Everything here is static inline so that the family needs no extra source file. */
#ifndef TSR_CPU_NN_UTIL_H
#define TSR_CPU_NN_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"

/* ---- Scratch memory ------------------------------------------------------------------ */

/* 64-byte aligned memory for packed panels; free with free(). NULL on failure or overflow. */
static inline void *nn_alloc_aligned(size_t count, size_t elem) {
  if (elem && count > (SIZE_MAX - 64) / elem)
    return NULL;
  size_t bytes = (count * elem + 63) & ~(size_t)63;
  if (bytes == 0)
    bytes = 64;
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes) != 0)
    return NULL;
  return p;
}

/* Whether the byte ranges [a, a + na) and [b, b + nb) share a byte. A fused node runs where
 * the last node it took in ran, so the plan may put its output on an operand whose life ended
 * there: the kernels test for it and compute apart where that would clobber what they still
 * read. */
static inline bool nn_bytes_overlap(const void *a, size_t na, const void *b, size_t nb) {
  const char *ca = a, *cb = b;
  return ca < cb + nb && cb < ca + na;
}

/* ---- Staging through float32 ---------------------------------------------------------- */

/* A float32 copy of t (any numeric dtype; float16 through the fast converter). The caller frees
 * it; NULL when memory runs out. */
static inline float *nn_f32_copy(const cpu_tensor *t) {
  float *p = malloc((t->count ? t->count : 1) * sizeof *p);
  if (!p)
    return NULL;
  if (t->dtype == TSR_DTYPE_FLOAT32) {
    if (t->count)
      memcpy(p, t->data, t->count * sizeof *p);
  } else if (t->dtype == TSR_DTYPE_FLOAT16) {
    const uint16_t *h = t->data;
    for (size_t i = 0; i < t->count; i++)
      p[i] = cpu_half_to_float(h[i]);
  } else {
    for (size_t i = 0; i < t->count; i++)
      p[i] = (float)cpu_read_f64(t, i);
  }
  return p;
}

/* Writes a float32 buffer of t->count values into t, converting to its dtype. */
static inline void nn_f32_store(cpu_tensor *t, const float *src) {
  if (t->dtype == TSR_DTYPE_FLOAT32) {
    if (t->count)
      memcpy(t->data, src, t->count * sizeof *src);
  } else if (t->dtype == TSR_DTYPE_FLOAT16) {
    uint16_t *h = t->data;
    for (size_t i = 0; i < t->count; i++)
      h[i] = cpu_float_to_half(src[i]);
  } else {
    for (size_t i = 0; i < t->count; i++)
      cpu_write_f64(t, i, src[i]);
  }
}

/* A view of t whose data is a float32 buffer; the dtype changes, the shape stays. */
static inline cpu_tensor nn_f32_view(const cpu_tensor *t, float *data) {
  cpu_tensor v = *t;
  v.dtype = TSR_DTYPE_FLOAT32;
  v.data = data;
  v.nbytes = t->count * sizeof(float);
  return v;
}

/* ---- Shapes --------------------------------------------------------------------------- */

/* Writes "[a,b,c]" into buf for messages. */
static inline const char *nn_dims_str(char *buf, size_t size, uint32_t rank, const int64_t *dims) {
  size_t o = 0;
  if (size == 0)
    return buf;
  buf[0] = '\0';
  o += (size_t)snprintf(buf + o, size - o, "[");
  for (uint32_t i = 0; i < rank && o < size; i++)
    o += (size_t)snprintf(buf + o, size - o, i ? ",%lld" : "%lld", (long long)dims[i]);
  if (o < size)
    snprintf(buf + o, size - o, "]");
  return buf;
}

static inline size_t nn_prod(const int64_t *dims, size_t from, size_t to) {
  size_t p = 1;
  for (size_t i = from; i < to; i++)
    p *= (size_t)dims[i];
  return p;
}

static inline bool nn_is_float(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
         dt == TSR_DTYPE_BFLOAT16;
}

/* a * b into *out for sizes a kernel derives from shapes (buffers, bands): false on overflow. */
static inline bool nn_mul_size(size_t a, size_t b, size_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

/* Grain for cpu_parallel_for: how many items make roughly `work` element operations, so that
 * small tensors stay on one thread. */
static inline size_t nn_grain(size_t per_item, size_t work) {
  if (per_item == 0)
    per_item = 1;
  size_t g = work / per_item;
  return g ? g : 1;
}

/* Floor division for possibly negative numerators and positive d. */
static inline int64_t nn_floordiv(int64_t a, int64_t d) {
  int64_t q = a / d;
  return (a % d != 0 && a < 0) ? q - 1 : q;
}
static inline int64_t nn_ceildiv(int64_t a, int64_t d) { return -nn_floordiv(-a, d); }

/* ---- Sliding windows ------------------------------------------------------------------ */

/* Conv, ConvTranspose and the pools handle 1-D, 2-D and 3-D windows. Spatial dims are kept
 * right-aligned in arrays of NN_SP: a 2-D window uses entries 1 and 2 and entry 0 is a dummy
 * dimension of size 1 (kernel 1, stride 1, no padding), so one 3-D loop nest serves all. */
enum { NN_SP = 3 };

typedef enum nn_auto_pad {
  NN_PAD_NOTSET = 0,
  NN_PAD_SAME_UPPER = 1,
  NN_PAD_SAME_LOWER = 2,
  NN_PAD_VALID = 3
} nn_auto_pad;

typedef struct nn_window {
  int nsp; /* spatial rank of the tensors: 1..3 */
  nn_auto_pad auto_pad;
  int64_t in[NN_SP], out[NN_SP];
  int64_t k[NN_SP], s[NN_SP], d[NN_SP];
  int64_t pb[NN_SP], pe[NN_SP]; /* pads at the beginning and the end */
} nn_window;

/* Attribute values (kernel, stride, dilation, pads) beyond NN_ATTR_LIMIT and spatial dims
 * beyond NN_DIM_LIMIT are refused, so that window arithmetic such as
 * s * (in - 1) + (k - 1) * d + 1 stays far inside int64. */
#define NN_ATTR_LIMIT ((int64_t)1 << 30)
#define NN_DIM_LIMIT ((int64_t)1 << 31)

static inline nn_auto_pad nn_parse_auto_pad(const char *s, bool *ok) {
  *ok = true;
  if (!s || !*s || !strcmp(s, "NOTSET"))
    return NN_PAD_NOTSET;
  if (!strcmp(s, "SAME_UPPER"))
    return NN_PAD_SAME_UPPER;
  if (!strcmp(s, "SAME_LOWER"))
    return NN_PAD_SAME_LOWER;
  if (!strcmp(s, "VALID"))
    return NN_PAD_VALID;
  *ok = false;
  return NN_PAD_NOTSET;
}

/* Reads one INTS attribute of nsp values (each in [lo, NN_ATTR_LIMIT]) into the right-aligned
 * slots of dst; leaves dst alone when the attribute is absent. */
static inline tsr_plugin_reason nn_read_sp_attr(const cpu_node *n, const char *name, int nsp,
                                                size_t expect, int64_t lo, int64_t *dst, char *msg,
                                                size_t size) {
  const int64_t *v;
  size_t cnt = cpu_attr_ints(n, name, &v);
  if (!v)
    return TSR_PLUGIN_REASON_NONE;
  if (cnt != expect)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "attribute %s has %zu values, expected %zu", name, cnt, expect);
  for (size_t i = 0; i < cnt; i++)
    if (v[i] < lo || v[i] > NN_ATTR_LIMIT)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "attribute %s[%zu] = %lld is out of range", name, i, (long long)v[i]);
  int off = NN_SP - nsp;
  if (expect == (size_t)nsp) {
    for (int i = 0; i < nsp; i++)
      dst[off + i] = v[i];
  } else { /* pads: begins then ends */
    for (int i = 0; i < nsp; i++) {
      dst[off + i] = v[i];
      dst[NN_SP + off + i] = v[nsp + i];
    }
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* Fills w from the node's attributes for input spatial dims x_sp[nsp]. kdims (may be NULL)
 * are the kernel dims taken from the weights when kernel_shape is absent; a kernel_shape
 * attribute must agree with them. Dilations are read only when use_dilations. Output dims
 * and SAME paddings are not computed here (see nn_window_forward). */
static inline tsr_plugin_reason nn_window_attrs(const cpu_node *n, int nsp, const int64_t *x_sp,
                                                const int64_t *kdims, bool use_dilations,
                                                nn_window *w, char *msg, size_t size) {
  memset(w, 0, sizeof *w);
  w->nsp = nsp;
  if (nsp < 1 || nsp > NN_SP)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "%d spatial dimensions; only 1-D, 2-D and 3-D are implemented", nsp);
  for (int i = 0; i < NN_SP; i++)
    w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
  int off = NN_SP - nsp;
  for (int i = 0; i < nsp; i++)
    w->in[off + i] = x_sp[i];
  tsr_plugin_reason r;
  int64_t pads[2 * NN_SP] = {0};
  const int64_t *ks;
  cpu_attr_ints(n, "kernel_shape", &ks);
  if (ks) {
    if ((r = nn_read_sp_attr(n, "kernel_shape", nsp, (size_t)nsp, 1, w->k, msg, size)))
      return r;
    if (kdims)
      for (int i = 0; i < nsp; i++)
        if (kdims[i] != w->k[off + i])
          return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                            "kernel_shape[%d] = %lld does not match the weights' %lld", i,
                            (long long)w->k[off + i], (long long)kdims[i]);
  } else if (kdims) {
    for (int i = 0; i < nsp; i++) {
      if (kdims[i] < 1 || kdims[i] > NN_ATTR_LIMIT)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "kernel dim %d is %lld", i,
                          (long long)kdims[i]);
      w->k[off + i] = kdims[i];
    }
  } else {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute kernel_shape is missing");
  }
  if ((r = nn_read_sp_attr(n, "strides", nsp, (size_t)nsp, 1, w->s, msg, size)))
    return r;
  if (use_dilations && (r = nn_read_sp_attr(n, "dilations", nsp, (size_t)nsp, 1, w->d, msg, size)))
    return r;
  if ((r = nn_read_sp_attr(n, "pads", nsp, 2 * (size_t)nsp, 0, pads, msg, size)))
    return r;
  for (int i = 0; i < NN_SP; i++) {
    w->pb[i] = pads[i];
    w->pe[i] = pads[NN_SP + i];
  }
  bool ok;
  const char *ap = cpu_attr_string(n, "auto_pad", "NOTSET");
  w->auto_pad = nn_parse_auto_pad(ap, &ok);
  if (!ok)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "auto_pad '%s' is not known", ap);
  for (int i = off; i < NN_SP; i++)
    if (w->in[i] < 0 || w->in[i] > NN_DIM_LIMIT)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "spatial dim %d is %lld", i - off,
                        (long long)w->in[i]);
  return TSR_PLUGIN_REASON_NONE;
}

/* Resolves auto_pad and computes output dims of a forward window (Conv, pools) as ONNX's
 * shape inference does: out = 1 + (in + pads - ((k - 1) * d + 1)) / s, rounded down, or up when
 * ceil_mode. Refuses windows bigger than the padded input. */
static inline tsr_plugin_reason nn_window_forward(nn_window *w, bool ceil_mode, char *msg,
                                                  size_t size) {
  for (int i = NN_SP - w->nsp; i < NN_SP; i++) {
    int64_t ek = (w->k[i] - 1) * w->d[i] + 1;
    if (w->auto_pad == NN_PAD_SAME_UPPER || w->auto_pad == NN_PAD_SAME_LOWER) {
      int64_t o = nn_ceildiv(w->in[i], w->s[i]);
      int64_t total = (o - 1) * w->s[i] + ek - w->in[i];
      if (total < 0)
        total = 0;
      int64_t small = total / 2, big = total - small;
      w->pb[i] = w->auto_pad == NN_PAD_SAME_UPPER ? small : big;
      w->pe[i] = w->auto_pad == NN_PAD_SAME_UPPER ? big : small;
    } else if (w->auto_pad == NN_PAD_VALID) {
      w->pb[i] = w->pe[i] = 0;
    }
    int64_t span = w->in[i] + w->pb[i] + w->pe[i] - ek;
    if (span < 0)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "window of %lld (kernel %lld, dilation %lld) is larger than the padded "
                        "input %lld in spatial dim %d",
                        (long long)ek, (long long)w->k[i], (long long)w->d[i],
                        (long long)(w->in[i] + w->pb[i] + w->pe[i]), i - (NN_SP - w->nsp));
    w->out[i] = 1 + (ceil_mode ? nn_ceildiv(span, w->s[i]) : span / w->s[i]);
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* Compares the output tensor's spatial dims with the window's. With ceil_mode, a runtime that
 * drops a last window starting in the end padding (as PyTorch does) is accepted too; the
 * kernels clip windows, so either size is safe. On a match w->out takes the tensor's dims. */
static inline tsr_plugin_reason nn_window_match_out(nn_window *w, const int64_t *y_sp,
                                                    bool ceil_mode, char *msg, size_t size) {
  int off = NN_SP - w->nsp;
  for (int i = 0; i < w->nsp; i++) {
    int64_t want = w->out[off + i], got = y_sp[i];
    bool ok = got == want;
    if (!ok && ceil_mode && got == want - 1 && got >= 1 &&
        (got * w->s[off + i]) >= w->in[off + i] + w->pb[off + i])
      ok = true;
    if (!ok)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "output spatial dim %d is %lld, expected %lld", i, (long long)got,
                        (long long)want);
    w->out[off + i] = got;
  }
  return TSR_PLUGIN_REASON_NONE;
}

#endif
