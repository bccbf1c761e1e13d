/* .npy files (NumPy format 1.0/2.0/3.0): reading any little-endian C-order numeric array and
 * writing format 1.0. Hand-written because the format is a short header and no maintained C
 * library for it is packaged in Debian. */
#ifndef TSR_CORE_NPY_H
#define TSR_CORE_NPY_H

#include "core/graph.h"

/* Parses .npy bytes into a dense tensor. Errors name the problem ("npy header: shape ..."). */
tsr_status tsr__npy_parse(const tsr_allocator *alloc, const void *data, size_t size,
                          tsr__tensor_data **out);
/* Writes dtype/dims/data as a .npy file. */
tsr_status tsr__npy_write(const char *path, int32_t dtype, size_t rank, const int64_t *dims,
                          const void *data, size_t nbytes);
/* Reads a whole file into memory allocated with alloc. */
tsr_status tsr__read_file(const tsr_allocator *alloc, const char *path, void **out,
                          size_t *out_size);

#endif
