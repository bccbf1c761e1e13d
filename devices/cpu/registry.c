/* The table of CPU operators, gathered from the kernel families. */
#include <string.h>

#include "devices/cpu/cpu.h"

static const cpu_op_list *const families[] = {
    &cpu_ops_conv,        &cpu_ops_gemm,   &cpu_ops_pool,  &cpu_ops_norm,
    &cpu_ops_elementwise, &cpu_ops_reduce, &cpu_ops_shape, &cpu_ops_resize,
    &cpu_ops_quant,       &cpu_ops_rnn,    &cpu_ops_misc,  &cpu_ops_signal,
    &cpu_ops_detect,
};

static bool same_domain(const char *a, const char *b) {
  if (!a || !*a || !strcmp(a, "ai.onnx")) a = "";
  if (!b || !*b || !strcmp(b, "ai.onnx")) b = "";
  return strcmp(a, b) == 0;
}

/* A linear scan over a few hundred entries costs nothing next to compiling a partition; it
 * runs only at compile and capability time. */
const cpu_op *cpu_find_op(const char *domain, const char *op_type, int64_t opset) {
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
    const cpu_op_list *list = families[f];
    for (size_t i = 0; i < list->count; i++) {
      const cpu_op *op = &list->ops[i];
      if (strcmp(op->op_type, op_type) != 0 || !same_domain(op->domain, domain)) continue;
      if (opset >= 0 && (opset < op->min_opset || opset > op->max_opset)) continue;
      return op;
    }
  }
  return NULL;
}
