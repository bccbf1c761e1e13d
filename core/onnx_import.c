/* ONNX import: ModelProto bytes -> tsr__graph.
 *
 * The protobuf is decoded by protobuf-c code generated at build time from the system's
 * onnx.proto, through an allocator that wraps the runtime's. Before decoding, the bytes are
 * walked once to bound message nesting, because protobuf-c recurses without a limit and a
 * hostile file of nested subgraphs would otherwise exhaust the stack.
 *
 * Everything the graph holds is copied out of the decoded message, which is then freed, so
 * the graph owns all its memory and the protobuf message never outlives this file.
 *
 * NOTE: tensor decoding (typed fields, raw data, external files) is half of this file and could
 * stand alone; it stays here so that the generated protobuf types are confined to one file. */
#include "core/onnx_import.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"

/* Raw tensor bytes are copied as they are: ONNX stores them little-endian, and so does the IR. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX importer assumes a little-endian host"
#endif

/* Messages nested deeper than this are refused. A subgraph costs three levels (Graph, Node,
 * Attribute), so real models stay far below it. */
#define MAX_MESSAGE_DEPTH 100

/* Attribute types (ONNX AttributeProto.AttributeType; also tsr_plugin_attr_type). */
enum {
  ATTR_UNDEFINED = 0,
  ATTR_FLOAT = 1,
  ATTR_INT = 2,
  ATTR_STRING = 3,
  ATTR_TENSOR = 4,
  ATTR_GRAPH = 5,
  ATTR_FLOATS = 6,
  ATTR_INTS = 7,
  ATTR_STRINGS = 8,
  ATTR_TENSORS = 9,
  ATTR_GRAPHS = 10,
  ATTR_SPARSE_TENSOR = 11,
  ATTR_SPARSE_TENSORS = 12,
  ATTR_TYPE_PROTO = 13,
  ATTR_TYPE_PROTOS = 14
};

typedef struct import_ctx {
  const tsr_allocator *a;
  const char *base_dir; /* NULL: external data is an error */
  bool have_real_base;
  char real_base[PATH_MAX]; /* realpath(base_dir), resolved on first use */
  const Onnx__ModelProto *model;
} import_ctx;

static tsr_status oom(const char *what) {
  return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory while importing %s", what);
}

/* ---- protobuf-c glue ------------------------------------------------------------------ */

typedef struct pb_alloc_ctx {
  const tsr_allocator *a;
  bool failed; /* an allocation failed, so a NULL from unpack means OOM, not bad bytes */
} pb_alloc_ctx;

static void *pb_alloc(void *data, size_t size) {
  pb_alloc_ctx *c = data;
  void *p = tsr__alloc(c->a, size);
  if (!p)
    c->failed = true;
  return p;
}

static void pb_free(void *data, void *p) {
  pb_alloc_ctx *c = data;
  tsr__free(c->a, p);
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return false;
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

typedef enum scan_result { SCAN_OK, SCAN_MALFORMED, SCAN_TOO_DEEP } scan_result;

/* Walks the wire format of a message of type d (NULL: unknown, not descended into), checking
 * that every length fits and that message fields nest at most MAX_MESSAGE_DEPTH deep. Each
 * byte is looked at once, so this is linear in the input. */
static scan_result scan_message(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                                const uint8_t *end, int depth) {
  while (p < end) {
    uint64_t key, x;
    if (!read_varint(&p, end, &key))
      return SCAN_MALFORMED;
    uint64_t number = key >> 3;
    if (number == 0 || number > 536870911u)
      return SCAN_MALFORMED;
    switch (key & 7) {
    case 0:
      if (!read_varint(&p, end, &x))
        return SCAN_MALFORMED;
      break;
    case 1:
      if (end - p < 8)
        return SCAN_MALFORMED;
      p += 8;
      break;
    case 5:
      if (end - p < 4)
        return SCAN_MALFORMED;
      p += 4;
      break;
    case 2: {
      if (!read_varint(&p, end, &x) || x > (uint64_t)(end - p))
        return SCAN_MALFORMED;
      const ProtobufCFieldDescriptor *f =
          d ? protobuf_c_message_descriptor_get_field(d, (unsigned)number) : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (depth + 1 > MAX_MESSAGE_DEPTH)
          return SCAN_TOO_DEEP;
        scan_result r = scan_message(f->descriptor, p, p + x, depth + 1);
        if (r != SCAN_OK)
          return r;
      }
      p += x;
      break;
    }
    default: /* groups (3, 4) are not used by ONNX and not accepted by protobuf-c */
      return SCAN_MALFORMED;
    }
  }
  return SCAN_OK;
}

/* Checks and decodes bytes as a message of type d. */
static tsr_status pb_unpack(const ProtobufCMessageDescriptor *d, const tsr_allocator *a,
                            ProtobufCAllocator *pa, const void *data, size_t size, const char *what,
                            ProtobufCMessage **out) {
  *out = NULL;
  static const uint8_t empty[1] = {0};
  const uint8_t *bytes = size ? data : empty;
  switch (scan_message(d, bytes, bytes + size, 1)) {
  case SCAN_OK: break;
  case SCAN_MALFORMED:
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "not a valid ONNX %s (protobuf parse "
                            "failed)",
                            what);
  case SCAN_TOO_DEEP:
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "not a valid ONNX %s: messages are nested "
                            "more than %d deep",
                            what, MAX_MESSAGE_DEPTH);
  }
  pb_alloc_ctx *pc = pa->allocator_data;
  pc->a = a;
  pc->failed = false;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, pa, size, bytes);
  if (!m) {
    if (pc->failed)
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory decoding the ONNX %s", what);
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "not a valid ONNX %s (protobuf parse "
                            "failed)",
                            what);
  }
  *out = m;
  return NULL;
}

/* ---- Small helpers -------------------------------------------------------------------- */

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static bool domain_is_onnx(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

/* The model's opset version for a node's domain, or -1 when the model does not import it. */
static int64_t model_opset(const Onnx__ModelProto *m, const char *domain) {
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    bool match = domain_is_onnx(domain) ? domain_is_onnx(o->domain)
                                        : (o->domain && strcmp(o->domain, domain) == 0);
    if (match)
      return o->has_version ? o->version : -1;
  }
  return -1;
}

static const char *dtype_label(int32_t dtype, char *buf, size_t size) {
  const char *n = tsr_dtype_name((tsr_dtype)dtype);
  if (strcmp(n, "undefined") != 0 || dtype == 0)
    return n;
  snprintf(buf, size, "data type %d", dtype);
  return buf;
}

/* Parses a non-negative decimal integer (external-data offsets and lengths). */
static bool parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s)
    return false;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return false;
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
      return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return true;
}

/* Replaces a value's shape with the tensor's (known dims, no symbols). */
static tsr_status value_set_from_tensor(const tsr_allocator *a, tsr__value *v,
                                        const tsr__tensor_data *t) {
  tsr__dim *dims = NULL;
  if (t->rank > 0) {
    dims = tsr__calloc(a, (size_t)t->rank, sizeof *dims);
    if (!dims)
      return oom("a value shape");
    for (int32_t i = 0; i < t->rank; i++)
      dims[i].value = t->dims[i];
  }
  if (v->dims) {
    for (int32_t i = 0; i < v->rank; i++)
      tsr__free(a, v->dims[i].param);
    tsr__free(a, v->dims);
  }
  v->dims = dims;
  v->rank = t->rank;
  v->dtype = t->dtype;
  return NULL;
}

/* Sets a value's dtype and shape from a ValueInfoProto type. Non-tensor types (sequences,
 * maps, optionals) leave the value unknown; whoever plans the graph refuses them there. */
static tsr_status value_set_from_type(const tsr_allocator *a, tsr__value *v,
                                      const Onnx__TypeProto *tp) {
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return NULL;
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  int32_t rank = -1;
  tsr__dim *dims = NULL;
  if (tt->shape) {
    if (tt->shape->n_dim > INT32_MAX / 2)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "value '%s' has rank %zu",
                              str_or_empty(v->name), tt->shape->n_dim);
    rank = (int32_t)tt->shape->n_dim;
    if (rank > 0) {
      dims = tsr__calloc(a, (size_t)rank, sizeof *dims);
      if (!dims)
        return oom("a value shape");
    }
    for (int32_t i = 0; i < rank; i++) {
      const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
      dims[i].value = -1;
      if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
        if (d->dim_value >= 0)
          dims[i].value = d->dim_value;
      } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                 d->dim_param && *d->dim_param) {
        dims[i].param = tsr__strdup(a, d->dim_param);
        if (!dims[i].param) {
          for (int32_t k = 0; k < i; k++)
            tsr__free(a, dims[k].param);
          tsr__free(a, dims);
          return oom("a value shape");
        }
      }
    }
  }
  if (v->dims) {
    for (int32_t i = 0; i < v->rank; i++)
      tsr__free(a, v->dims[i].param);
    tsr__free(a, v->dims);
  }
  v->dims = dims;
  v->rank = rank;
  v->dtype = tt->has_elem_type ? tt->elem_type : TSR_DTYPE_UNDEFINED;
  return NULL;
}

static bool value_is_input(const tsr__graph *g, int32_t v) {
  for (uint32_t i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] == v)
      return true;
  return false;
}

/* ---- Tensors -------------------------------------------------------------------------- */

/* Resolves base_dir once: the prefix every external-data file must stay under. */
static tsr_status resolve_base(import_ctx *ctx) {
  if (ctx->have_real_base)
    return NULL;
  if (!realpath(ctx->base_dir, ctx->real_base))
    return tsr__status_make(errno == ENOENT ? TSR_STATUS_NOT_FOUND : TSR_STATUS_IO,
                            "model directory '%s' cannot be resolved: %s", ctx->base_dir,
                            strerror(errno));
  ctx->have_real_base = true;
  return NULL;
}

/* True when a relative location has a ".." component. Backslashes count as separators too:
 * models written on Windows use them, and "..\\x" must not slip through. */
static bool has_dotdot(const char *loc) {
  const char *p = loc;
  while (*p) {
    const char *e = p;
    while (*e && *e != '/' && *e != '\\')
      e++;
    if (e - p == 2 && p[0] == '.' && p[1] == '.')
      return true;
    p = *e ? e + 1 : e;
  }
  return false;
}

/* Reads a tensor's bytes from its external-data file under base_dir into *out (nbytes long). */
static tsr_status read_external(import_ctx *ctx, const Onnx__TensorProto *tp, const char *name,
                                size_t nbytes, void **out) {
  *out = NULL;
  const char *location = NULL;
  uint64_t offset = 0, length = 0;
  bool have_length = false;
  for (size_t i = 0; i < tp->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = tp->external_data[i];
    if (!e->key)
      continue;
    if (strcmp(e->key, "location") == 0) {
      location = e->value;
    } else if (strcmp(e->key, "offset") == 0) {
      if (!parse_u64(e->value, &offset))
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "tensor '%s': external data offset "
                                "'%s' is not a non-negative integer",
                                name, str_or_empty(e->value));
    } else if (strcmp(e->key, "length") == 0) {
      if (!parse_u64(e->value, &length))
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "tensor '%s': external data length "
                                "'%s' is not a non-negative integer",
                                name, str_or_empty(e->value));
      have_length = true;
    }
    /* "checksum" and unknown keys are ignored, as the ONNX reference loader does. */
  }
  if (!location || !*location)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s' has external data without a "
                            "location",
                            name);
  if (!ctx->base_dir)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s' stores its data in external "
                            "file '%s', but no base directory was given (model loaded from "
                            "memory)",
                            name, location);
  if (location[0] == '/' || location[0] == '\\')
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s': external data location '%s' "
                            "escapes the model directory (absolute path)",
                            name, location);
  if (has_dotdot(location))
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s': external data location '%s' "
                            "escapes the model directory ('..' component)",
                            name, location);
  TSR_RETURN_IF_ERROR(resolve_base(ctx));

  char joined[PATH_MAX], real[PATH_MAX];
  int n = snprintf(joined, sizeof joined, "%s/%s", ctx->base_dir, location);
  if (n < 0 || (size_t)n >= sizeof joined)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s': external data path '%s/%s' "
                            "is too long",
                            name, ctx->base_dir, location);
  if (!realpath(joined, real))
    return tsr__status_make(errno == ENOENT ? TSR_STATUS_NOT_FOUND : TSR_STATUS_IO,
                            "tensor '%s': external data file '%s' cannot be opened: %s", name,
                            joined, strerror(errno));
  /* Symlinks are resolved by realpath, so a link pointing outside is caught here. */
  size_t bl = strlen(ctx->real_base);
  bool inside = strcmp(ctx->real_base, "/") == 0 ||
                (strncmp(real, ctx->real_base, bl) == 0 && real[bl] == '/');
  if (!inside)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s': external data location '%s' "
                            "escapes the model directory (it resolves to '%s')",
                            name, location, real);

  int fd = open(real, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return tsr__status_make(TSR_STATUS_IO,
                            "tensor '%s': cannot open external data file '%s': "
                            "%s",
                            name, real, strerror(errno));
  tsr_status st = NULL;
  void *buf = NULL;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = tsr__status_make(TSR_STATUS_IO, "tensor '%s': cannot stat '%s': %s", name, real,
                          strerror(errno));
    goto done;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = tsr__status_make(TSR_STATUS_IO, "tensor '%s': external data '%s' is not a regular file",
                          name, real);
    goto done;
  }
  uint64_t fsize = (uint64_t)sb.st_size;
  if (offset > fsize) {
    st = tsr__status_make(TSR_STATUS_INVALID_MODEL,
                          "tensor '%s': external data offset %llu is "
                          "past the end of '%s' (%llu bytes)",
                          name, (unsigned long long)offset, real, (unsigned long long)fsize);
    goto done;
  }
  if (!have_length)
    length = fsize - offset;
  if (length > fsize - offset) {
    st = tsr__status_make(TSR_STATUS_INVALID_MODEL,
                          "tensor '%s': external data range %llu+%llu "
                          "is past the end of '%s' (%llu bytes)",
                          name, (unsigned long long)offset, (unsigned long long)length, real,
                          (unsigned long long)fsize);
    goto done;
  }
  if (length != (uint64_t)nbytes) {
    st = tsr__status_make(TSR_STATUS_INVALID_MODEL,
                          "tensor '%s': external data has %llu bytes, "
                          "but its type and dims need %zu",
                          name, (unsigned long long)length, nbytes);
    goto done;
  }
  if (nbytes == 0)
    goto done;
  buf = tsr__alloc(ctx->a, nbytes);
  if (!buf) {
    st = oom("external tensor data");
    goto done;
  }
  size_t got = 0;
  while (got < nbytes) {
    ssize_t r = pread(fd, (char *)buf + got, nbytes - got, (off_t)(offset + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      st = tsr__status_make(TSR_STATUS_IO, "tensor '%s': reading '%s' failed: %s", name, real,
                            r < 0 ? strerror(errno) : "unexpected end of file");
      goto done;
    }
    got += (size_t)r;
  }
done:
  close(fd);
  if (st) {
    tsr__free(ctx->a, buf);
    return st;
  }
  *out = buf;
  return NULL;
}

/* Checks that the typed field a dtype uses (float_data, int32_data, ...) holds `count` values.
 * ONNX keeps 8- and 16-bit integers, bool, float16 and bfloat16 in int32_data, one per element,
 * and uint32 in uint64_data. */
static tsr_status check_typed(const Onnx__TensorProto *tp, const char *name, int32_t dtype,
                              size_t count) {
  size_t have;
  const char *field;
  switch (dtype) {
  case TSR_DTYPE_FLOAT32:
    have = tp->n_float_data;
    field = "float_data";
    break;
  case TSR_DTYPE_FLOAT64:
    have = tp->n_double_data;
    field = "double_data";
    break;
  case TSR_DTYPE_INT64:
    have = tp->n_int64_data;
    field = "int64_data";
    break;
  case TSR_DTYPE_UINT32:
  case TSR_DTYPE_UINT64:
    have = tp->n_uint64_data;
    field = "uint64_data";
    break;
  default:
    have = tp->n_int32_data;
    field = "int32_data";
    break;
  }
  if (have != count) {
    char dl[32];
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s' has %zu values in %s (and no "
                            "raw_data), but its %s dims need %zu",
                            name, have, field, dtype_label(dtype, dl, sizeof dl), count);
  }
  return NULL;
}

/* Copies the typed values check_typed accepted into dst (count elements of dtype). */
static void copy_typed(const Onnx__TensorProto *tp, int32_t dtype, size_t count, uint8_t *dst) {
  if (count == 0)
    return;
  switch (dtype) {
  case TSR_DTYPE_FLOAT32: memcpy(dst, tp->float_data, count * 4); break;
  case TSR_DTYPE_FLOAT64: memcpy(dst, tp->double_data, count * 8); break;
  case TSR_DTYPE_INT64: memcpy(dst, tp->int64_data, count * 8); break;
  case TSR_DTYPE_UINT64: memcpy(dst, tp->uint64_data, count * 8); break;
  case TSR_DTYPE_INT32: memcpy(dst, tp->int32_data, count * 4); break;
  case TSR_DTYPE_UINT32:
    for (size_t i = 0; i < count; i++) {
      uint32_t x = (uint32_t)tp->uint64_data[i];
      memcpy(dst + 4 * i, &x, 4);
    }
    break;
  case TSR_DTYPE_BOOL:
    for (size_t i = 0; i < count; i++)
      dst[i] = tp->int32_data[i] != 0;
    break;
  case TSR_DTYPE_INT8:
  case TSR_DTYPE_UINT8:
    for (size_t i = 0; i < count; i++)
      dst[i] = (uint8_t)tp->int32_data[i];
    break;
  default: /* INT16, UINT16, FLOAT16, BFLOAT16: the low 16 bits */
    for (size_t i = 0; i < count; i++) {
      uint16_t x = (uint16_t)tp->int32_data[i];
      memcpy(dst + 2 * i, &x, 2);
    }
    break;
  }
}

/* Converts a TensorProto into dense tensor data owned by ctx->a. With `take` (tp's own
 * raw_data, NULL otherwise), that buffer (which protobuf-c allocated through ctx->a) becomes
 * the tensor's instead of being copied, and tp is left without it: for a graph's initializers,
 * which are read once and are most of a model's bytes (ResNet-50's 100 MB: one copy and 25 000
 * page faults less at load). */
static tsr_status tensor_from_proto(import_ctx *ctx, const Onnx__TensorProto *tp,
                                    ProtobufCBinaryData *take, tsr__tensor_data **out) {
  *out = NULL;
  const char *name = tp->name && *tp->name ? tp->name : "<unnamed>";
  char dl[32], db[256];
  if (!tp->has_data_type || tp->data_type == TSR_DTYPE_UNDEFINED)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "tensor '%s' has no data type", name);
  int32_t dtype = tp->data_type;
  if (dtype == TSR_DTYPE_STRING)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "tensor '%s' holds strings, which Tessera "
                            "does not support",
                            name);
  size_t esize = tsr_dtype_size((tsr_dtype)dtype);
  if (esize == 0)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "tensor '%s' has %s, which Tessera does not "
                            "support",
                            name, dtype_label(dtype, dl, sizeof dl));
  if (tp->segment)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "tensor '%s' is stored in segments, which "
                            "Tessera does not support",
                            name);
  if (tp->n_dims > 4096)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "tensor '%s' has rank %zu", name, tp->n_dims);
  for (size_t i = 0; i < tp->n_dims; i++)
    if (tp->dims[i] < 0)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "tensor '%s' has a negative dimension: "
                              "%s",
                              name, tsr__format_dims(tp->dims, tp->n_dims, db, sizeof db));
  size_t count, nbytes;
  if (!tsr__shape_count(tp->dims, tp->n_dims, &count) || !tsr__mul_size(count, esize, &nbytes))
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "tensor '%s': the size of %s %s overflows",
                            name, dtype_label(dtype, dl, sizeof dl),
                            tsr__format_dims(tp->dims, tp->n_dims, db, sizeof db));

  tsr__tensor_data *t = tsr__calloc(ctx->a, 1, sizeof *t);
  if (!t)
    return oom("a tensor");
  t->dtype = dtype;
  t->rank = (int32_t)tp->n_dims;
  t->nbytes = nbytes;
  tsr_status st = NULL;
  if (tp->n_dims) {
    t->dims = tsr__calloc(ctx->a, tp->n_dims, sizeof *t->dims);
    if (!t->dims) {
      st = oom("a tensor");
      goto fail;
    }
    memcpy(t->dims, tp->dims, tp->n_dims * sizeof *t->dims);
  }
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    st = read_external(ctx, tp, name, nbytes, &t->data);
    if (st)
      goto fail;
    *out = t;
    return NULL;
  }
  /* The data present must match the dims before anything is allocated: the dims alone may
   * ask for any size. */
  if (tp->has_raw_data) {
    if (tp->raw_data.len != nbytes) {
      st = tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "tensor '%s': raw_data has %zu bytes, but "
                            "%s %s needs %zu",
                            name, tp->raw_data.len, dtype_label(dtype, dl, sizeof dl),
                            tsr__format_dims(tp->dims, tp->n_dims, db, sizeof db), nbytes);
      goto fail;
    }
  } else {
    st = check_typed(tp, name, dtype, count);
    if (st)
      goto fail;
  }
  if (take && tp->has_raw_data && nbytes && take->data) {
    t->data = take->data;
    take->data = NULL; /* protobuf-c's free skips it */
    take->len = 0;
    *out = t;
    return NULL;
  }
  if (nbytes) {
    t->data = tsr__alloc(ctx->a, nbytes);
    if (!t->data) {
      st = oom("tensor data");
      goto fail;
    }
  }
  if (tp->has_raw_data) {
    if (nbytes)
      memcpy(t->data, tp->raw_data.data, nbytes);
  } else {
    copy_typed(tp, dtype, count, t->data);
  }
  *out = t;
  return NULL;
fail:
  tsr__tensor_data_free(ctx->a, t);
  return st;
}

/* ---- Graphs, nodes, attributes -------------------------------------------------------- */

static tsr_status import_graph(import_ctx *ctx, const Onnx__GraphProto *gp, tsr__graph *g);

/* The attribute type a pre-IR-2 model meant, from the field it filled in. */
static int32_t infer_attr_type(const Onnx__AttributeProto *ap) {
  if (ap->has_f)
    return ATTR_FLOAT;
  if (ap->has_i)
    return ATTR_INT;
  if (ap->has_s)
    return ATTR_STRING;
  if (ap->t)
    return ATTR_TENSOR;
  if (ap->g)
    return ATTR_GRAPH;
  if (ap->n_floats)
    return ATTR_FLOATS;
  if (ap->n_ints)
    return ATTR_INTS;
  if (ap->n_strings)
    return ATTR_STRINGS;
  return ATTR_UNDEFINED;
}

static const char *attr_type_name(int32_t type) {
  switch (type) {
  case ATTR_TENSORS: return "TENSORS";
  case ATTR_GRAPHS: return "GRAPHS";
  case ATTR_SPARSE_TENSOR: return "SPARSE_TENSOR";
  case ATTR_SPARSE_TENSORS: return "SPARSE_TENSORS";
  case ATTR_TYPE_PROTO: return "TYPE_PROTO";
  case ATTR_TYPE_PROTOS: return "TYPE_PROTOS";
  default: return "UNDEFINED";
  }
}

/* Fills *at (zeroed, owned by graph g's node) from ap. On error *at may hold part of the data;
 * the graph's teardown releases it. */
static tsr_status import_attr(import_ctx *ctx, tsr__graph *g, const Onnx__AttributeProto *ap,
                              tsr__attr *at) {
  const tsr_allocator *a = ctx->a;
  if (!ap->name || !*ap->name)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "an attribute has no name");
  at->name = tsr__strdup(a, ap->name);
  if (!at->name)
    return oom("an attribute");
  if (ap->ref_attr_name && *ap->ref_attr_name)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "attribute '%s' refers to function "
                            "attribute '%s' outside a function",
                            ap->name, ap->ref_attr_name);
  int32_t type = ap->has_type ? (int32_t)ap->type : infer_attr_type(ap);
  switch (type) {
  case ATTR_FLOAT: at->f = ap->f; break;
  case ATTR_INT: at->i = ap->i; break;
  case ATTR_STRING:
    at->s = tsr__strndup(a, (const char *)ap->s.data, ap->s.len);
    if (!at->s)
      return oom("an attribute");
    at->s_len = ap->s.len;
    break;
  case ATTR_TENSOR:
    if (!ap->t)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "attribute '%s' has type TENSOR but no "
                              "tensor",
                              ap->name);
    TSR_RETURN_IF_ERROR(
        tsr__status_wrap(tensor_from_proto(ctx, ap->t, NULL, &at->t), "attribute '%s'", ap->name));
    break;
  case ATTR_GRAPH: {
    if (!ap->g)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "attribute '%s' has type GRAPH but no "
                              "graph",
                              ap->name);
    TSR_RETURN_IF_ERROR(tsr__graph_create(a, &at->g));
    at->g->parent = g;
    TSR_RETURN_IF_ERROR(
        tsr__status_wrap(import_graph(ctx, ap->g, at->g), "subgraph '%s'", ap->name));
    break;
  }
  case ATTR_FLOATS:
    if (ap->n_floats) {
      at->floats = tsr__calloc(a, ap->n_floats, sizeof *at->floats);
      if (!at->floats)
        return oom("an attribute");
      memcpy(at->floats, ap->floats, ap->n_floats * sizeof *at->floats);
    }
    at->count = ap->n_floats;
    break;
  case ATTR_INTS:
    if (ap->n_ints) {
      at->ints = tsr__calloc(a, ap->n_ints, sizeof *at->ints);
      if (!at->ints)
        return oom("an attribute");
      memcpy(at->ints, ap->ints, ap->n_ints * sizeof *at->ints);
    }
    at->count = ap->n_ints;
    break;
  case ATTR_STRINGS:
    if (ap->n_strings) {
      at->strings = tsr__calloc(a, ap->n_strings, sizeof *at->strings);
      if (!at->strings)
        return oom("an attribute");
      at->count = ap->n_strings;
      for (size_t i = 0; i < ap->n_strings; i++) {
        at->strings[i] = tsr__strndup(a, (const char *)ap->strings[i].data, ap->strings[i].len);
        if (!at->strings[i])
          return oom("an attribute");
      }
    }
    break;
  case ATTR_TENSORS:
  case ATTR_GRAPHS:
  case ATTR_SPARSE_TENSOR:
  case ATTR_SPARSE_TENSORS:
  case ATTR_TYPE_PROTO:
  case ATTR_TYPE_PROTOS:
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "attribute '%s' has type %s, which Tessera "
                            "does not support",
                            ap->name, attr_type_name(type));
  default:
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "attribute '%s' has no valid type (%d)",
                            ap->name, (int)type);
  }
  at->type = type;
  return NULL;
}

/* Builds the tensor a Constant node holds, from whichever value attribute it has. */
static tsr_status constant_tensor(import_ctx *ctx, const Onnx__NodeProto *np,
                                  tsr__tensor_data **out) {
  *out = NULL;
  const Onnx__AttributeProto *ap = NULL;
  int found = 0;
  for (size_t i = 0; i < np->n_attribute; i++) {
    const char *an = str_or_empty(np->attribute[i]->name);
    if (strncmp(an, "value", 5) == 0 || strcmp(an, "sparse_value") == 0) {
      ap = np->attribute[i];
      found++;
    }
  }
  if (found != 1)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "needs exactly one value attribute, found "
                            "%d",
                            found);
  const char *an = ap->name;
  if (strcmp(an, "value") == 0) {
    if (!ap->t)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "attribute 'value' holds no tensor");
    return tsr__status_wrap(tensor_from_proto(ctx, ap->t, NULL, out), "attribute 'value'");
  }
  int32_t dtype;
  size_t n;
  const void *src;
  bool scalar;
  if (strcmp(an, "value_float") == 0) {
    dtype = TSR_DTYPE_FLOAT32, n = 1, src = &ap->f, scalar = true;
  } else if (strcmp(an, "value_floats") == 0) {
    dtype = TSR_DTYPE_FLOAT32, n = ap->n_floats, src = ap->floats, scalar = false;
  } else if (strcmp(an, "value_int") == 0) {
    dtype = TSR_DTYPE_INT64, n = 1, src = &ap->i, scalar = true;
  } else if (strcmp(an, "value_ints") == 0) {
    dtype = TSR_DTYPE_INT64, n = ap->n_ints, src = ap->ints, scalar = false;
  } else if (strcmp(an, "value_string") == 0 || strcmp(an, "value_strings") == 0 ||
             strcmp(an, "sparse_value") == 0) {
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "attribute '%s' is not supported (string "
                            "and sparse constants)",
                            an);
  } else {
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "unknown attribute '%s'", an);
  }
  size_t esize = tsr_dtype_size((tsr_dtype)dtype);
  tsr__tensor_data *t = tsr__calloc(ctx->a, 1, sizeof *t);
  if (!t)
    return oom("a Constant");
  t->dtype = dtype;
  t->rank = scalar ? 0 : 1;
  t->nbytes = n * esize;
  if (!scalar) {
    t->dims = tsr__calloc(ctx->a, 1, sizeof *t->dims);
    if (!t->dims)
      goto fail;
    t->dims[0] = (int64_t)n;
  }
  if (n) {
    t->data = tsr__alloc(ctx->a, t->nbytes);
    if (!t->data)
      goto fail;
    memcpy(t->data, src, t->nbytes); /* float and int64 fields have the IR's layout */
  }
  *out = t;
  return NULL;
fail:
  tsr__tensor_data_free(ctx->a, t);
  return oom("a Constant");
}

/* A Constant node becomes an initializer-like value; the node itself is dropped. */
static tsr_status import_constant(import_ctx *ctx, tsr__graph *g, const Onnx__NodeProto *np) {
  if (np->n_output != 1 || !np->output[0] || !*np->output[0])
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "must have exactly one named output, has "
                            "%zu",
                            np->n_output);
  tsr__tensor_data *t;
  TSR_RETURN_IF_ERROR(constant_tensor(ctx, np, &t));
  int32_t idx;
  tsr_status st = tsr__graph_intern_value(g, np->output[0], &idx);
  if (st) {
    tsr__tensor_data_free(ctx->a, t);
    return st;
  }
  tsr__value *v = &g->values[idx];
  if (v->init || value_is_input(g, idx)) {
    tsr__tensor_data_free(ctx->a, t);
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "output 0 '%s' is already %s", np->output[0],
                            v->init ? "an initializer or Constant" : "a graph input");
  }
  v->init = t;
  return value_set_from_tensor(ctx->a, v, t);
}

/* Interns a node's input or output names; "" (an absent optional) becomes -1. */
static tsr_status intern_names(tsr__graph *g, char **names, size_t n, int32_t *out) {
  for (size_t i = 0; i < n; i++) {
    out[i] = -1;
    if (names[i] && *names[i])
      TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, names[i], &out[i]));
  }
  return NULL;
}

static tsr_status import_node_body(import_ctx *ctx, tsr__graph *g, const Onnx__NodeProto *np,
                                   const char *label, const char *domain) {
  const tsr_allocator *a = ctx->a;
  if (np->n_input > UINT32_MAX / 2 || np->n_output > UINT32_MAX / 2 ||
      np->n_attribute > UINT32_MAX / 2)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "has too many inputs, outputs or "
                                                      "attributes");
  tsr__node *n;
  TSR_RETURN_IF_ERROR(tsr__graph_add_node(g, &n, NULL));
  /* `n` stays valid below: only this graph's values and other graphs change until we return. */
  n->name = tsr__strdup(a, label);
  n->op_type = tsr__strdup(a, np->op_type);
  n->domain = tsr__strdup(a, domain_is_onnx(domain) ? "" : domain);
  if (!n->name || !n->op_type || !n->domain)
    return oom("a node");
  n->opset = model_opset(ctx->model, domain);
  if (np->n_input) {
    n->inputs = tsr__calloc(a, np->n_input, sizeof *n->inputs);
    if (!n->inputs)
      return oom("a node");
    n->n_inputs = (uint32_t)np->n_input;
    TSR_RETURN_IF_ERROR(intern_names(g, np->input, np->n_input, n->inputs));
  }
  if (np->n_output) {
    n->outputs = tsr__calloc(a, np->n_output, sizeof *n->outputs);
    if (!n->outputs)
      return oom("a node");
    n->n_outputs = (uint32_t)np->n_output;
    TSR_RETURN_IF_ERROR(intern_names(g, np->output, np->n_output, n->outputs));
  }
  if (np->n_attribute) {
    n->attrs = tsr__calloc(a, np->n_attribute, sizeof *n->attrs);
    if (!n->attrs)
      return oom("a node");
    n->n_attrs = (uint32_t)np->n_attribute;
    for (size_t i = 0; i < np->n_attribute; i++)
      TSR_RETURN_IF_ERROR(import_attr(ctx, g, np->attribute[i], &n->attrs[i]));
  }
  return NULL;
}

static tsr_status import_node(import_ctx *ctx, tsr__graph *g, const Onnx__NodeProto *np,
                              size_t index) {
  char label[256];
  if (!np->op_type || !*np->op_type)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "node %zu ('%s') has no op_type", index,
                            str_or_empty(np->name));
  if (np->name && *np->name)
    snprintf(label, sizeof label, "%s", np->name);
  else
    snprintf(label, sizeof label, "%s_%zu", np->op_type, index);
  tsr_status st;
  if (domain_is_onnx(np->domain) && strcmp(np->op_type, "Constant") == 0)
    st = import_constant(ctx, g, np);
  else
    st = import_node_body(ctx, g, np, np->name && *np->name ? np->name : label, np->domain);
  /* label may be cut short for very long names; the node keeps the full one. */
  return tsr__status_wrap(st, "node '%s' (%s)", label, np->op_type);
}

static tsr_status import_graph(import_ctx *ctx, const Onnx__GraphProto *gp, tsr__graph *g) {
  const tsr_allocator *a = ctx->a;
  g->name = tsr__strdup(a, str_or_empty(gp->name));
  if (!g->name)
    return oom("a graph");

  /* Initializers first: a graph input with the same name is a weight, not an input. */
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *tp = gp->initializer[i];
    if (!tp->name || !*tp->name)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "initializer %zu has no name", i);
    int32_t idx;
    TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, tp->name, &idx));
    if (g->values[idx].init)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "initializer '%s' is defined twice",
                              tp->name);
    /* Tensor errors name the tensor, which is the initializer's name. */
    TSR_RETURN_IF_ERROR(
        tensor_from_proto(ctx, tp, &gp->initializer[i]->raw_data, &g->values[idx].init));
    TSR_RETURN_IF_ERROR(value_set_from_tensor(a, &g->values[idx], g->values[idx].init));
  }
  if (gp->n_sparse_initializer) {
    const Onnx__SparseTensorProto *sp = gp->sparse_initializer[0];
    const char *name = sp->values && sp->values->name ? sp->values->name : "<unnamed>";
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "sparse initializer '%s' is not supported; "
                            "store it as a dense initializer",
                            name);
  }

  if (gp->n_input) {
    g->inputs = tsr__calloc(a, gp->n_input, sizeof *g->inputs);
    if (!g->inputs)
      return oom("graph inputs");
  }
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi->name || !*vi->name)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "graph input %zu has no name", i);
    int32_t idx;
    TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, vi->name, &idx));
    if (g->values[idx].init)
      continue;
    if (value_is_input(g, idx))
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "graph input '%s' is listed twice",
                              vi->name);
    g->inputs[g->n_inputs++] = idx;
    TSR_RETURN_IF_ERROR(value_set_from_type(a, &g->values[idx], vi->type));
  }

  if (gp->n_output) {
    g->outputs = tsr__calloc(a, gp->n_output, sizeof *g->outputs);
    if (!g->outputs)
      return oom("graph outputs");
  }
  for (size_t i = 0; i < gp->n_output; i++) {
    const Onnx__ValueInfoProto *vi = gp->output[i];
    if (!vi->name || !*vi->name)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "graph output %zu has no name", i);
    int32_t idx;
    TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, vi->name, &idx));
    g->outputs[g->n_outputs++] = idx;
    tsr__value *v = &g->values[idx];
    if (!v->init && v->dtype == TSR_DTYPE_UNDEFINED && v->rank < 0)
      TSR_RETURN_IF_ERROR(value_set_from_type(a, v, vi->type));
  }

  for (size_t i = 0; i < gp->n_node; i++)
    TSR_RETURN_IF_ERROR(import_node(ctx, g, gp->node[i], i));

  /* value_info only describes values that exist; it never adds any. */
  for (size_t i = 0; i < gp->n_value_info; i++) {
    const Onnx__ValueInfoProto *vi = gp->value_info[i];
    int32_t idx = vi->name ? tsr__graph_find_value(g, vi->name) : -1;
    if (idx < 0)
      continue;
    tsr__value *v = &g->values[idx];
    if (!v->init && v->dtype == TSR_DTYPE_UNDEFINED && v->rank < 0)
      TSR_RETURN_IF_ERROR(value_set_from_type(a, v, vi->type));
  }
  return NULL;
}

static tsr_status import_model(import_ctx *ctx, const Onnx__ModelProto *m, tsr__graph *g) {
  if (!m->graph)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "the ONNX model has no graph");
  g->ir_version = m->has_ir_version ? m->ir_version : 0;
  if (m->n_opset_import) {
    g->opsets = tsr__calloc(ctx->a, m->n_opset_import, sizeof *g->opsets);
    if (!g->opsets)
      return oom("opset imports");
    for (size_t i = 0; i < m->n_opset_import; i++) {
      const Onnx__OperatorSetIdProto *o = m->opset_import[i];
      if (!o->has_version)
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "opset import for domain '%s' has no "
                                "version",
                                str_or_empty(o->domain));
      char *d = tsr__strdup(ctx->a, domain_is_onnx(o->domain) ? "" : o->domain);
      if (!d)
        return oom("opset imports");
      g->opsets[g->n_opsets].domain = d;
      g->opsets[g->n_opsets].version = o->version;
      g->n_opsets++;
    }
  }
  TSR_RETURN_IF_ERROR(import_graph(ctx, m->graph, g));
  return tsr__graph_finalize(g);
}

/* ---- Entry points --------------------------------------------------------------------- */

tsr_status tsr__onnx_import(const tsr_allocator *alloc, const void *data, size_t size,
                            const char *base_dir, tsr__graph **out) {
  if (out)
    *out = NULL;
  if (!out || (!data && size))
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "onnx_import: NULL argument");
  if (!alloc)
    alloc = tsr__default_allocator();
  pb_alloc_ctx pc = {alloc, false};
  ProtobufCAllocator pa = {pb_alloc, pb_free, &pc};
  ProtobufCMessage *msg;
  TSR_RETURN_IF_ERROR(
      pb_unpack(&onnx__model_proto__descriptor, alloc, &pa, data, size, "model", &msg));
  Onnx__ModelProto *m = (Onnx__ModelProto *)msg;

  /* The context holds a PATH_MAX buffer; keep it off the stack of deep callers. */
  import_ctx *ctx = tsr__calloc(alloc, 1, sizeof *ctx);
  tsr__graph *g = NULL;
  tsr_status st = ctx ? tsr__graph_create(alloc, &g) : oom("the model");
  if (!st) {
    ctx->a = alloc;
    ctx->base_dir = base_dir;
    ctx->model = m;
    st = import_model(ctx, m, g);
  }
  tsr__free(alloc, ctx);
  onnx__model_proto__free_unpacked(m, &pa);
  if (st) {
    tsr__graph_destroy(g);
    return st;
  }
  *out = g;
  return NULL;
}

tsr_status tsr__onnx_parse_tensor(const tsr_allocator *alloc, const void *data, size_t size,
                                  tsr__tensor_data **out, char **out_name) {
  if (out)
    *out = NULL;
  if (out_name)
    *out_name = NULL;
  if (!out || (!data && size))
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "onnx_parse_tensor: NULL argument");
  if (!alloc)
    alloc = tsr__default_allocator();
  pb_alloc_ctx pc = {alloc, false};
  ProtobufCAllocator pa = {pb_alloc, pb_free, &pc};
  ProtobufCMessage *msg;
  TSR_RETURN_IF_ERROR(
      pb_unpack(&onnx__tensor_proto__descriptor, alloc, &pa, data, size, "tensor", &msg));
  Onnx__TensorProto *tp = (Onnx__TensorProto *)msg;
  import_ctx *ctx = tsr__calloc(alloc, 1, sizeof *ctx);
  tsr__tensor_data *t = NULL;
  char *name = NULL;
  tsr_status st = NULL;
  if (!ctx) {
    st = oom("a tensor");
  } else {
    ctx->a = alloc;
    st = tensor_from_proto(ctx, tp, NULL, &t);
    if (!st && out_name) {
      name = tsr__strdup(alloc, str_or_empty(tp->name));
      if (!name)
        st = oom("a tensor name");
    }
  }
  tsr__free(alloc, ctx);
  onnx__tensor_proto__free_unpacked(tp, &pa);
  if (st) {
    tsr__tensor_data_free(alloc, t);
    tsr__free(alloc, name);
    return st;
  }
  *out = t;
  if (out_name)
    *out_name = name;
  return NULL;
}
