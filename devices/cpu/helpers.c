/* Helpers every CPU kernel uses: attribute access through the plugin graph API, errors,
 * dtype conversion. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

int cpu_fail(cpu_ctx *ctx, const char *fmt, ...) {
  if (ctx && ctx->err && ctx->err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->err_size, fmt, ap);
    va_end(ap);
  }
  return -1;
}

tsr_plugin_reason cpu_refuse(char *msg, size_t size, tsr_plugin_reason reason, const char *fmt,
                             ...) {
  if (msg && size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
  }
  return reason;
}

static bool get_attr(const cpu_node *n, const char *name, tsr_plugin_attr *out) {
  if (!n->api || !n->g) return false;
  memset(out, 0, sizeof *out);
  return n->api->node_attr(n->g, n->index, name, out) != 0;
}

bool cpu_has_attr(const cpu_node *n, const char *name) {
  tsr_plugin_attr a;
  return get_attr(n, name, &a);
}

int64_t cpu_attr_int(const cpu_node *n, const char *name, int64_t dflt) {
  tsr_plugin_attr a;
  if (!get_attr(n, name, &a)) return dflt;
  if (a.type == TSR_PLUGIN_ATTR_INT) return a.i;
  if (a.type == TSR_PLUGIN_ATTR_FLOAT) return (int64_t)a.f;
  return dflt;
}

float cpu_attr_float(const cpu_node *n, const char *name, float dflt) {
  tsr_plugin_attr a;
  if (!get_attr(n, name, &a)) return dflt;
  if (a.type == TSR_PLUGIN_ATTR_FLOAT) return a.f;
  if (a.type == TSR_PLUGIN_ATTR_INT) return (float)a.i;
  return dflt;
}

const char *cpu_attr_string(const cpu_node *n, const char *name, const char *dflt) {
  tsr_plugin_attr a;
  if (!get_attr(n, name, &a) || a.type != TSR_PLUGIN_ATTR_STRING) return dflt;
  return a.s;
}

size_t cpu_attr_ints(const cpu_node *n, const char *name, const int64_t **out) {
  tsr_plugin_attr a;
  *out = NULL;
  if (!get_attr(n, name, &a) || a.type != TSR_PLUGIN_ATTR_INTS) return 0;
  *out = a.ints;
  return a.count;
}

size_t cpu_attr_floats(const cpu_node *n, const char *name, const float **out) {
  tsr_plugin_attr a;
  *out = NULL;
  if (!get_attr(n, name, &a) || a.type != TSR_PLUGIN_ATTR_FLOATS) return 0;
  *out = a.floats;
  return a.count;
}

bool cpu_attr_tensor(const cpu_node *n, const char *name, tsr_plugin_attr *out) {
  return get_attr(n, name, out) && out->type == TSR_PLUGIN_ATTR_TENSOR;
}

size_t cpu_dtype_size(uint32_t dtype) {
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

const char *cpu_dtype_name(uint32_t dtype) {
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
  default: return "undefined";
  }
}

float cpu_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalise */
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) {
        man <<= 1;
        exp--;
      }
      man &= 0x3ff;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t cpu_float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t exp = (x >> 23) & 0xff;
  uint32_t man = x & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
  int32_t e = (int32_t)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
  uint32_t rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* round to nearest even */
  return (uint16_t)half;
}

static float bf16_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

int64_t cpu_read_int(const cpu_tensor *t, size_t i) {
  const void *p = t->data;
  switch (t->dtype) {
  case TSR_DTYPE_INT64: return ((const int64_t *)p)[i];
  case TSR_DTYPE_INT32: return ((const int32_t *)p)[i];
  case TSR_DTYPE_INT16: return ((const int16_t *)p)[i];
  case TSR_DTYPE_INT8: return ((const int8_t *)p)[i];
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_BOOL: return ((const uint8_t *)p)[i];
  case TSR_DTYPE_UINT16: return ((const uint16_t *)p)[i];
  case TSR_DTYPE_UINT32: return ((const uint32_t *)p)[i];
  case TSR_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i];
  default: return (int64_t)cpu_read_f64(t, i);
  }
}

double cpu_read_f64(const cpu_tensor *t, size_t i) {
  const void *p = t->data;
  switch (t->dtype) {
  case TSR_DTYPE_FLOAT32: return ((const float *)p)[i];
  case TSR_DTYPE_FLOAT64: return ((const double *)p)[i];
  case TSR_DTYPE_FLOAT16: return cpu_half_to_float(((const uint16_t *)p)[i]);
  case TSR_DTYPE_BFLOAT16: return bf16_to_float(((const uint16_t *)p)[i]);
  case TSR_DTYPE_INT64: return (double)((const int64_t *)p)[i];
  case TSR_DTYPE_INT32: return ((const int32_t *)p)[i];
  case TSR_DTYPE_INT16: return ((const int16_t *)p)[i];
  case TSR_DTYPE_INT8: return ((const int8_t *)p)[i];
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_BOOL: return ((const uint8_t *)p)[i];
  case TSR_DTYPE_UINT16: return ((const uint16_t *)p)[i];
  case TSR_DTYPE_UINT32: return ((const uint32_t *)p)[i];
  case TSR_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
  default: return 0.0;
  }
}

void cpu_write_f64(cpu_tensor *t, size_t i, double v) {
  void *p = t->data;
  switch (t->dtype) {
  case TSR_DTYPE_FLOAT32: ((float *)p)[i] = (float)v; break;
  case TSR_DTYPE_FLOAT64: ((double *)p)[i] = v; break;
  case TSR_DTYPE_FLOAT16: ((uint16_t *)p)[i] = cpu_float_to_half((float)v); break;
  case TSR_DTYPE_BFLOAT16: ((uint16_t *)p)[i] = float_to_bf16((float)v); break;
  case TSR_DTYPE_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
  case TSR_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
  case TSR_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
  case TSR_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
  case TSR_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case TSR_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0.0; break;
  case TSR_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
  case TSR_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
  case TSR_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
  default: break;
  }
}

cpu_isa cpu_detect_isa(void) {
  const char *force = getenv("TESSERA_CPU_GENERIC");
  if (force && *force && strcmp(force, "0") != 0) return CPU_ISA_GENERIC;
#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CPU_ISA_AVX2_FMA;
#endif
  return CPU_ISA_GENERIC;
}

/* Through cpuid: clang's __builtin_cpu_supports does not know "f16c". */
bool cpu_has_f16c(void) {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
  return false;
#endif
}
