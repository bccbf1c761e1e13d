/* The host API for tensors and models. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/npy.h"
#include "core/onnx_import.h"
#include "core/passes.h"
#include "scheduler/scheduler.h"

/* ---- Tensors -------------------------------------------------------------------------- */

tsr_status tsr__tensor_new(const tsr_allocator *alloc, tsr_dtype dtype, size_t rank,
                           const int64_t *dims, tsr_tensor **out) {
  *out = NULL;
  size_t esize = tsr_dtype_size(dtype);
  if (esize == 0)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED, "tensors of dtype %s are not supported",
                            tsr_dtype_name(dtype));
  size_t count = 1, nbytes;
  for (size_t i = 0; i < rank; i++) {
    if (dims[i] < 0) {
      char buf[256];
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                              "tensor shape %s has a negative dimension",
                              tsr__format_dims(dims, rank, buf, sizeof buf));
    }
    if (!tsr__mul_size(count, (size_t)dims[i], &count))
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "tensor shape overflows size_t");
  }
  if (!tsr__mul_size(count, esize, &nbytes))
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "tensor byte size overflows size_t");
  tsr_tensor *t = tsr__calloc(alloc, 1, sizeof *t);
  if (!t) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a tensor");
  t->alloc = alloc;
  t->dtype = dtype;
  t->rank = rank;
  t->count = count;
  t->nbytes = nbytes;
  t->dims = tsr__calloc(alloc, rank ? rank : 1, sizeof *t->dims);
  t->data = tsr__calloc(alloc, 1, nbytes ? nbytes : 1);
  if (!t->dims || !t->data) {
    tsr_tensor_destroy(t);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory allocating %zu bytes for a tensor",
                            nbytes);
  }
  if (rank) memcpy(t->dims, dims, rank * sizeof *dims);
  *out = t;
  return NULL;
}

tsr_status tsr_tensor_create(tsr_runtime *rt, tsr_dtype dtype, size_t rank, const int64_t *dims,
                             tsr_tensor **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (rank && !dims) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "dims is NULL");
  return tsr__tensor_new(rt ? &rt->alloc : tsr__default_allocator(), dtype, rank, dims, out);
}

tsr_status tsr_tensor_create_copy(tsr_runtime *rt, tsr_dtype dtype, size_t rank,
                                  const int64_t *dims, const void *data, size_t byte_size,
                                  tsr_tensor **out) {
  TSR_RETURN_IF_ERROR(tsr_tensor_create(rt, dtype, rank, dims, out));
  if ((*out)->nbytes != byte_size || (byte_size && !data)) {
    size_t want = (*out)->nbytes;
    tsr_tensor_destroy(*out);
    *out = NULL;
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                            "tensor data has %zu bytes, expected %zu for its shape and dtype",
                            byte_size, want);
  }
  if (byte_size) memcpy((*out)->data, data, byte_size);
  return NULL;
}

void tsr_tensor_destroy(tsr_tensor *t) {
  if (!t) return;
  tsr__free(t->alloc, t->dims);
  tsr__free(t->alloc, t->data);
  tsr__free(t->alloc, t);
}

tsr_dtype tsr_tensor_dtype(const tsr_tensor *t) { return t ? t->dtype : TSR_DTYPE_UNDEFINED; }
size_t tsr_tensor_rank(const tsr_tensor *t) { return t ? t->rank : 0; }
const int64_t *tsr_tensor_dims(const tsr_tensor *t) { return t ? t->dims : NULL; }
size_t tsr_tensor_element_count(const tsr_tensor *t) { return t ? t->count : 0; }
size_t tsr_tensor_byte_size(const tsr_tensor *t) { return t ? t->nbytes : 0; }
void *tsr_tensor_data(tsr_tensor *t) { return t ? t->data : NULL; }

tsr_status tsr_tensor_load_file(tsr_runtime *rt, const char *path, tsr_tensor **out) {
  if (!out || !path) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "path and out are required");
  *out = NULL;
  const tsr_allocator *a = rt ? &rt->alloc : tsr__default_allocator();
  void *bytes = NULL;
  size_t size = 0;
  TSR_RETURN_IF_ERROR(tsr__read_file(a, path, &bytes, &size));
  tsr__tensor_data *td = NULL;
  tsr_status s;
  if (size >= 6 && memcmp(bytes, "\x93NUMPY", 6) == 0) {
    s = tsr__npy_parse(a, bytes, size, &td);
  } else {
    char *name = NULL;
    s = tsr__onnx_parse_tensor(a, bytes, size, &td, &name);
    tsr__free(a, name);
  }
  tsr__free(a, bytes);
  if (s) return tsr__status_wrap(s, "reading tensor file '%s'", path);
  s = tsr_tensor_create_copy(rt, (tsr_dtype)td->dtype, (size_t)td->rank, td->dims, td->data,
                             td->nbytes, out);
  tsr__tensor_data_free(a, td);
  if (s) return tsr__status_wrap(s, "reading tensor file '%s'", path);
  return NULL;
}

tsr_status tsr_tensor_save_npy(const tsr_tensor *t, const char *path) {
  if (!t || !path) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "tensor and path are required");
  return tsr__npy_write(path, t->dtype, t->rank, t->dims, t->data, t->nbytes);
}

/* ---- Models --------------------------------------------------------------------------- */

static void free_infos(const tsr_allocator *a, tsr_value_info *infos, size_t n) {
  if (!infos) return;
  for (size_t i = 0; i < n; i++) {
    tsr__free(a, (void *)infos[i].dims);
    tsr__free(a, (void *)infos[i].dim_names);
  }
  tsr__free(a, infos);
}

static tsr_status make_infos(const tsr__graph *g, const int32_t *idx, uint32_t n,
                             tsr_value_info **out) {
  const tsr_allocator *a = g->alloc;
  tsr_value_info *infos = tsr__calloc(a, n ? n : 1, sizeof *infos);
  if (!infos) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  for (uint32_t i = 0; i < n; i++) {
    const tsr__value *v = &g->values[idx[i]];
    tsr_value_info *info = &infos[i];
    info->struct_size = sizeof *info;
    info->name = v->name;
    info->dtype = (tsr_dtype)v->dtype;
    info->rank = v->rank;
    if (v->rank > 0) {
      int64_t *dims = tsr__calloc(a, (size_t)v->rank, sizeof *dims);
      const char **names = tsr__calloc(a, (size_t)v->rank, sizeof *names);
      info->dims = dims;
      info->dim_names = names;
      if (!dims || !names) {
        free_infos(a, infos, n);
        return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
      }
      for (int32_t d = 0; d < v->rank; d++) {
        dims[d] = v->dims[d].value;
        names[d] = v->dims[d].param;
      }
    }
  }
  *out = infos;
  return NULL;
}

tsr_status tsr_model_load_memory(tsr_runtime *rt, const void *data, size_t size,
                                 const char *base_dir, tsr_model **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!rt || (!data && size))
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "runtime and data are required");
  tsr__graph *g = NULL;
  TSR_RETURN_IF_ERROR(tsr__onnx_import(&rt->alloc, data, size, base_dir, &g));
  tsr_status ps = tsr__passes_run(g);
  if (ps) {
    tsr__graph_destroy(g);
    return ps;
  }
  tsr_model *m = tsr__calloc(&rt->alloc, 1, sizeof *m);
  if (!m) {
    tsr__graph_destroy(g);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory loading a model");
  }
  m->runtime = rt;
  m->graph = g;
  tsr_status s = make_infos(g, g->inputs, g->n_inputs, &m->input_info);
  if (!s) s = make_infos(g, g->outputs, g->n_outputs, &m->output_info);
  if (s) {
    tsr_model_destroy(m);
    return s;
  }
  *out = m;
  return NULL;
}

/* A regular file's bytes mapped read-only (its pages shared with the page cache), or NULL
 * where that cannot be done: the caller then reads the file. protobuf-c copies what the model
 * keeps out of it, so the mapping lives only while it parses. Reading a 100 MB model instead cost a
 * copy out of the page cache into as much fresh memory, a fault and a zeroed page every 4 KiB:
 * ResNet-50's load took 285-370 ms read, 229-306 mapped (alternating, 6 each; 107 000 page
 * faults down to 84 000), MobileNetV2's 37-49 against 28-35. As with any mapped file, one
 * that another process truncates while it is parsed faults the process (SIGBUS); ONNX Runtime
 * and TFLite map their models too. */
static void *map_file(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat sb;
  void *p = NULL;
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
      (uint64_t)sb.st_size < (uint64_t)SIZE_MAX) {
    int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE;
#endif
    p = mmap(NULL, (size_t)sb.st_size, PROT_READ, flags, fd, 0);
    if (p == MAP_FAILED) p = NULL;
    else *size = (size_t)sb.st_size;
  }
  close(fd);
  return p;
}

tsr_status tsr_model_load_file(tsr_runtime *rt, const char *path, tsr_model **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!rt || !path) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "runtime and path are required");
  size_t size = 0;
  void *bytes = map_file(path, &size);
  bool mapped = bytes != NULL;
  if (!mapped) TSR_RETURN_IF_ERROR(tsr__read_file(&rt->alloc, path, &bytes, &size));
  char *dir = tsr__strdup(&rt->alloc, path);
  tsr_status s = NULL;
  if (!dir) {
    s = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  } else {
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = '\0';
    else
      strcpy(dir, ".");
    s = tsr_model_load_memory(rt, bytes, size, dir, out);
    if (s) s = tsr__status_wrap(s, "model '%s'", path);
  }
  if (mapped)
    munmap(bytes, size);
  else
    tsr__free(&rt->alloc, bytes);
  tsr__free(&rt->alloc, dir);
  return s;
}

void tsr_model_destroy(tsr_model *m) {
  if (!m) return;
  const tsr_allocator *a = &m->runtime->alloc;
  if (m->graph) {
    free_infos(a, m->input_info, m->graph->n_inputs);
    free_infos(a, m->output_info, m->graph->n_outputs);
  }
  tsr__graph_destroy(m->graph);
  tsr__free(a, m);
}

size_t tsr_model_input_count(const tsr_model *m) { return m ? m->graph->n_inputs : 0; }
size_t tsr_model_output_count(const tsr_model *m) { return m ? m->graph->n_outputs : 0; }
size_t tsr_model_node_count(const tsr_model *m) { return m ? m->graph->n_nodes : 0; }

static tsr_status copy_info(const tsr_value_info *src, size_t n, size_t index, const char *what,
                            tsr_value_info *out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  if (index >= n)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "%s index %zu out of range (%zu %ss)",
                            what, index, n, what);
  tsr__copy_info(out, &src[index], sizeof *out);
  return NULL;
}

tsr_status tsr_model_input_info(const tsr_model *m, size_t index, tsr_value_info *out) {
  if (!m) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "model is NULL");
  return copy_info(m->input_info, m->graph->n_inputs, index, "input", out);
}

tsr_status tsr_model_output_info(const tsr_model *m, size_t index, tsr_value_info *out) {
  if (!m) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "model is NULL");
  return copy_info(m->output_info, m->graph->n_outputs, index, "output", out);
}
