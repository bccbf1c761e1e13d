/* ONNX import: ModelProto bytes -> tsr__graph, through protobuf-c code generated at build time
 * from the system's onnx.proto. */
#ifndef TSR_CORE_ONNX_IMPORT_H
#define TSR_CORE_ONNX_IMPORT_H

#include "core/graph.h"

/* Parses an ONNX model. base_dir is where external-data files are looked up (NULL: external
 * data is an error); a location that escapes base_dir (absolute, or with "..") is an error.
 * Every error names what is wrong and where ("node 'conv_3' (Conv): attribute 'pads' ...").
 * The graph is finalized (checked and topologically sorted) on success. */
tsr_status tsr__onnx_import(const tsr_allocator *alloc, const void *data, size_t size,
                            const char *base_dir, tsr__graph **out);

/* Parses a serialized TensorProto (the ONNX test-data .pb format) into a dense tensor;
 * raw_data and the typed *_data fields are both accepted. */
tsr_status tsr__onnx_parse_tensor(const tsr_allocator *alloc, const void *data, size_t size,
                                  tsr__tensor_data **out, char **out_name);

#endif
