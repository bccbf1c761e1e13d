/* Builds small ONNX models in C through the protobuf-c message types, so unit suites can make
 * the exact graphs they need without Python. Test-only; aborts on misuse of the builder. */
#ifndef TSR_TESTS_MODEL_BUILDER_H
#define TSR_TESTS_MODEL_BUILDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct mb_model mb_model;

mb_model *mb_new(int64_t opset);
/* dims may hold -1 for a symbolic dimension (named "N"). dtype is a tsr_dtype value. */
void mb_input(mb_model *m, const char *name, int32_t dtype, size_t rank, const int64_t *dims);
void mb_output(mb_model *m, const char *name, int32_t dtype);
void mb_init_f32(mb_model *m, const char *name, size_t rank, const int64_t *dims,
                 const float *data);
void mb_init_i64(mb_model *m, const char *name, size_t rank, const int64_t *dims,
                 const int64_t *data);
/* Adds a node; inputs/outputs are comma-separated names ("" between commas = absent). */
void mb_node(mb_model *m, const char *op, const char *name, const char *inputs,
             const char *outputs);
/* Attributes on the last node added. */
void mb_attr_int(mb_model *m, const char *name, int64_t v);
void mb_attr_float(mb_model *m, const char *name, float v);
void mb_attr_ints(mb_model *m, const char *name, size_t n, const int64_t *v);
/* A GRAPH attribute (If branch, Loop or Scan body) whose graph is body's: build body with
 * mb_new (its opset is ignored), its inputs, nodes and outputs; m takes ownership of it. */
void mb_attr_graph(mb_model *m, const char *name, mb_model *body);
/* Serializes; the caller frees the bytes with free(). */
void *mb_serialize(mb_model *m, size_t *size);
void mb_free(mb_model *m);

#endif
