/* Internal helpers shared by every part of the library: statuses, the allocator, checked size
 * arithmetic. Not installed; plugins never see this file. */
#ifndef TSR_CORE_COMMON_H
#define TSR_CORE_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/tessera.h"

/* Makes an error status with a printf-style message. Never fails: when memory for the message
 * cannot be had, a static out-of-memory status is returned instead. */
tsr_status tsr__status_make(tsr_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
tsr_status tsr__status_makev(tsr_status_code code, const char *fmt, va_list ap);
/* Prefixes an existing status' message ("while X: <old>"); takes ownership of `inner`. */
tsr_status tsr__status_wrap(tsr_status inner, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Marks the library tests for on its own statuses, instead of parsing messages; they survive
 * tsr__status_wrap. NEEDS_INPUT_VALUES: a shape depends on values only known at run time. */
enum { TSR__STATUS_NEEDS_INPUT_VALUES = 1u << 0 };
/* Adds marks to s (not NULL) and returns it. */
tsr_status tsr__status_mark(tsr_status s, uint32_t marks);
bool tsr__status_marked(tsr_status s, uint32_t mark);

#define TSR_RETURN_IF_ERROR(expr)                                                               \
  do {                                                                                          \
    tsr_status tsr__s = (expr);                                                                 \
    if (tsr__s) return tsr__s;                                                                  \
  } while (0)

/* The allocator everything in one runtime uses. tsr__default_allocator() wraps the C library. */
const tsr_allocator *tsr__default_allocator(void);
void *tsr__alloc(const tsr_allocator *a, size_t size);      /* NULL on failure or size 0 -> 1 */
void *tsr__calloc(const tsr_allocator *a, size_t n, size_t size); /* zeroed; checks n*size */
void *tsr__realloc(const tsr_allocator *a, void *p, size_t size);
void tsr__free(const tsr_allocator *a, void *p);
char *tsr__strdup(const tsr_allocator *a, const char *s);
char *tsr__strndup(const tsr_allocator *a, const char *s, size_t n);

/* Copies a public info struct (whose first member is its size_t struct_size) into a caller's
 * struct compiled against this or an older header: only the members that fit in
 * out->struct_size are written (0 means the full size), and struct_size is set to what was
 * written. */
void tsr__copy_info(void *out, const void *src, size_t full_size);

/* Checked arithmetic for sizes read from files: return false on overflow. */
static inline bool tsr__mul_size(size_t a, size_t b, size_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}
static inline bool tsr__add_size(size_t a, size_t b, size_t *out) {
  return !__builtin_add_overflow(a, b, out);
}
/* Element count of a shape; false on negative dims or overflow. */
bool tsr__shape_count(const int64_t *dims, size_t rank, size_t *out);

/* Formats dims as "[1,3,224,224]" into buf; returns buf. */
const char *tsr__format_dims(const int64_t *dims, size_t rank, char *buf, size_t size);

#endif
