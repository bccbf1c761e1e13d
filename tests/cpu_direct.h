/* Runs one CPU kernel directly, without a model or a session: the unit suites of the kernel
 * families use it to compare kernels with references on random inputs. The node's attributes
 * are served through a minimal tsr_plugin_graph_api, as the host would serve them. */
#ifndef TSR_TESTS_CPU_DIRECT_H
#define TSR_TESTS_CPU_DIRECT_H

#include "devices/cpu/cpu.h"

typedef struct cpu_direct cpu_direct;

cpu_direct *cpu_direct_new(const char *op_type, int64_t opset);
void cpu_direct_free(cpu_direct *d);

void cpu_direct_attr_int(cpu_direct *d, const char *name, int64_t v);
void cpu_direct_attr_float(cpu_direct *d, const char *name, float v);
void cpu_direct_attr_string(cpu_direct *d, const char *name, const char *v);
void cpu_direct_attr_ints(cpu_direct *d, const char *name, size_t n, const int64_t *v);
void cpu_direct_attr_floats(cpu_direct *d, const char *name, size_t n, const float *v);

/* Adds the next input. data is copied. is_const marks it as a weight known at compile time. */
void cpu_direct_input(cpu_direct *d, uint32_t dtype, uint32_t rank, const int64_t *dims,
                      const void *data, bool is_const);
void cpu_direct_input_absent(cpu_direct *d);
/* Adds the next output with its (already inferred) dtype and shape; zero-filled memory. */
void cpu_direct_output(cpu_direct *d, uint32_t dtype, uint32_t rank, const int64_t *dims);

/* What plugin.c's fuse_nodes would have given the node: LayerNormalization's skip input (in[3],
 * added to X; the inputs up to it must have been added, absent ones through
 * cpu_direct_input_absent). */
void cpu_direct_skip(cpu_direct *d);
/* Runs with output k placed in the memory of input j, offset_bytes from its start (negative:
 * before it), as a session's memory plan may place a fused node's output; input j's data is
 * what the run first sees there, and out(k) holds the result after the run. */
void cpu_direct_alias(cpu_direct *d, uint32_t k, uint32_t j, ptrdiff_t offset_bytes);

/* check(), prepare(), run(), release() with `threads` threads. Returns 0 on success, a positive
 * tsr_plugin_reason when check() refused, -1 when no kernel exists or prepare/run failed; the
 * message goes to err. */
int cpu_direct_run(cpu_direct *d, size_t threads, char *err, size_t err_size);
cpu_tensor *cpu_direct_out(cpu_direct *d, uint32_t k);

#endif
