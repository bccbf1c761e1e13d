/* Statuses, the default allocator, dtype names and small shape helpers. */
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tsr_status_s {
  tsr_status_code code;
  bool is_static;
  uint32_t marks; /* TSR__STATUS_* */
  char message[];
};

/* Returned when even the status itself cannot be allocated. */
static struct {
  tsr_status_code code;
  bool is_static;
  uint32_t marks;
  char message[64];
} oom_status = {TSR_STATUS_OUT_OF_MEMORY, true, 0, "out of memory while reporting an error"};

tsr_status tsr__status_makev(tsr_status_code code, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  /* Statuses use malloc, not the runtime allocator: they outlive runtimes and are freed by
   * callers that may not have one at hand. */
  struct tsr_status_s *s = malloc(sizeof *s + (size_t)n + 1);
  if (!s) return (tsr_status)&oom_status;
  s->code = code;
  s->is_static = false;
  s->marks = 0;
  vsnprintf(s->message, (size_t)n + 1, fmt, ap);
  return s;
}

tsr_status tsr__status_make(tsr_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsr_status s = tsr__status_makev(code, fmt, ap);
  va_end(ap);
  return s;
}

tsr_status tsr__status_wrap(tsr_status inner, const char *fmt, ...) {
  if (!inner) return NULL;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  tsr_status s = tsr__status_make(inner->code, "%s: %s", prefix, inner->message);
  tsr__status_mark(s, inner->marks);
  tsr_status_free(inner);
  return s;
}

tsr_status tsr__status_mark(tsr_status s, uint32_t marks) {
  if (s && !s->is_static) s->marks |= marks;
  return s;
}

bool tsr__status_marked(tsr_status s, uint32_t mark) { return s && (s->marks & mark) != 0; }

tsr_status_code tsr_status_code_of(tsr_status status) {
  return status ? status->code : TSR_STATUS_OK;
}

const char *tsr_status_message(tsr_status status) { return status ? status->message : "OK"; }

const char *tsr_status_code_name(tsr_status_code code) {
  switch (code) {
  case TSR_STATUS_OK: return "OK";
  case TSR_STATUS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case TSR_STATUS_INVALID_MODEL: return "INVALID_MODEL";
  case TSR_STATUS_UNSUPPORTED: return "UNSUPPORTED";
  case TSR_STATUS_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
  case TSR_STATUS_IO: return "IO";
  case TSR_STATUS_DEVICE: return "DEVICE";
  case TSR_STATUS_NOT_FOUND: return "NOT_FOUND";
  case TSR_STATUS_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

void tsr_status_free(tsr_status status) {
  if (status && !status->is_static) free(status);
}

/* ---- Allocation ----------------------------------------------------------------------- */

static void *default_alloc(void *self, size_t size) { return malloc(size); }
static void *default_realloc(void *self, void *p, size_t size) { return realloc(p, size); }
static void default_free(void *self, void *p) { free(p); }

static const tsr_allocator default_allocator = {NULL, default_alloc, default_realloc,
                                                default_free};

const tsr_allocator *tsr__default_allocator(void) { return &default_allocator; }

void *tsr__alloc(const tsr_allocator *a, size_t size) {
  if (!a) a = &default_allocator;
  return a->alloc(a->self, size ? size : 1);
}

void *tsr__calloc(const tsr_allocator *a, size_t n, size_t size) {
  size_t total;
  if (!tsr__mul_size(n, size, &total)) return NULL;
  void *p = tsr__alloc(a, total);
  if (p) memset(p, 0, total ? total : 1);
  return p;
}

void *tsr__realloc(const tsr_allocator *a, void *p, size_t size) {
  if (!a) a = &default_allocator;
  return a->realloc(a->self, p, size ? size : 1);
}

void tsr__free(const tsr_allocator *a, void *p) {
  if (!p) return;
  if (!a) a = &default_allocator;
  a->free(a->self, p);
}

char *tsr__strndup(const tsr_allocator *a, const char *s, size_t n) {
  char *d = tsr__alloc(a, n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *tsr__strdup(const tsr_allocator *a, const char *s) {
  return s ? tsr__strndup(a, s, strlen(s)) : NULL;
}

void tsr__copy_info(void *out, const void *src, size_t full_size) {
  size_t want;
  memcpy(&want, out, sizeof want);
  size_t n = want && want < full_size ? want : full_size;
  memcpy(out, src, n);
  memcpy(out, &n, sizeof n);
}

/* ---- Dtypes and shapes ---------------------------------------------------------------- */

const char *tsr_dtype_name(tsr_dtype dtype) {
  switch (dtype) {
  case TSR_DTYPE_FLOAT32: return "float32";
  case TSR_DTYPE_UINT8: return "uint8";
  case TSR_DTYPE_INT8: return "int8";
  case TSR_DTYPE_UINT16: return "uint16";
  case TSR_DTYPE_INT16: return "int16";
  case TSR_DTYPE_INT32: return "int32";
  case TSR_DTYPE_INT64: return "int64";
  case TSR_DTYPE_STRING: return "string";
  case TSR_DTYPE_BOOL: return "bool";
  case TSR_DTYPE_FLOAT16: return "float16";
  case TSR_DTYPE_FLOAT64: return "float64";
  case TSR_DTYPE_UINT32: return "uint32";
  case TSR_DTYPE_UINT64: return "uint64";
  case TSR_DTYPE_BFLOAT16: return "bfloat16";
  case TSR_DTYPE_UNDEFINED: break;
  }
  return "undefined";
}

size_t tsr_dtype_size(tsr_dtype dtype) {
  switch (dtype) {
  case TSR_DTYPE_BOOL:
  case TSR_DTYPE_INT8:
  case TSR_DTYPE_UINT8: return 1;
  case TSR_DTYPE_INT16:
  case TSR_DTYPE_UINT16:
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16: return 2;
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_UINT32:
  case TSR_DTYPE_FLOAT32: return 4;
  case TSR_DTYPE_INT64:
  case TSR_DTYPE_UINT64:
  case TSR_DTYPE_FLOAT64: return 8;
  default: return 0;
  }
}

const char *tsr_reason_name(tsr_reason reason) {
  switch (reason) {
  case TSR_REASON_NONE: return "none";
  case TSR_REASON_OP: return "op";
  case TSR_REASON_DTYPE: return "dtype";
  case TSR_REASON_SHAPE: return "shape";
  case TSR_REASON_QUANTIZATION: return "quantization";
  case TSR_REASON_TOO_SMALL: return "too-small";
  case TSR_REASON_ATTRIBUTE: return "attribute";
  case TSR_REASON_PRECISION: return "precision";
  case TSR_REASON_NOT_LISTED: return "not-listed";
  case TSR_REASON_OTHER: return "other";
  }
  return "unknown";
}

bool tsr__shape_count(const int64_t *dims, size_t rank, size_t *out) {
  size_t n = 1;
  for (size_t i = 0; i < rank; i++) {
    if (dims[i] < 0) return false;
    if (!tsr__mul_size(n, (size_t)dims[i], &n)) return false;
  }
  *out = n;
  return true;
}

const char *tsr__format_dims(const int64_t *dims, size_t rank, char *buf, size_t size) {
  size_t pos = 0;
  if (size == 0) return buf;
  buf[0] = '\0';
  pos += (size_t)snprintf(buf + pos, size - pos, "[");
  for (size_t i = 0; i < rank && pos < size; i++)
    pos += (size_t)snprintf(buf + pos, size - pos, i ? ",%lld" : "%lld", (long long)dims[i]);
  if (pos < size) snprintf(buf + pos, size - pos, "]");
  return buf;
}
