/* The OpenCL device plugin: every device of every platform the Khronos ICD loader finds,
 * running partitions with kernels written in OpenCL C (kernels.cl).
 *
 * - init() enumerates platforms and devices and reads their properties; a machine with no
 *   platform loads the plugin and reports no devices.
 * - The program (all kernels, one source) is built for a device on its first compile() and
 *   kept for the plugin's life, once per variant a session asks for (float32, or the fp16
 *   variants when the session allows fp16: see choose_variant); its binary is cached on disk
 *   (see ensure_program).
 * - Buffers are cl_mem objects; the host's arena offsets are passed to kernels as element
 *   offsets, so no sub-buffers (and no CL_DEVICE_MEM_BASE_ADDR_ALIGN constraint) are needed.
 * - Each executable has its own in-order queue and a mutex that execute() holds, because
 *   kernel arguments are state of the cl_kernel objects (P-19); execute() ends with clFinish.
 *
 * The plugin includes only plugin.h from Tessera and exports only tsr_plugin_query. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ocl.h"
#include "opencl_kernels.h" /* generated: static const char ocl_kernels_source[] */

#define OCL_MAX_LOG 6000

/* ---- Errors --------------------------------------------------------------------------- */

const char *ocl__error_name(cl_int code) {
  switch (code) {
#define E(x) \
  case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE)
    E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
    E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
    E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION)
    E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT)
    E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE)
    E(CL_INVALID_PROPERTY) E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS)
    E(CL_INVALID_LINKER_OPTIONS) E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
  case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
  default: return "unknown OpenCL error";
  }
}

static void set_error(const ocl_state *st, tsr_plugin_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(const ocl_state *st, tsr_plugin_error *err, const char *fmt, ...) {
  char buf[OCL_MAX_LOG + 512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  st->host->set_error(err, buf);
}

static void logf_(const ocl_state *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(const ocl_state *st, int level, const char *fmt, ...) {
  if (!st->host->log) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  st->host->log(level, buf);
}

/* Formats "opencl: <call> failed: <CL_NAME> (<code>)" into msg. */
static void cl_fail(char *msg, size_t size, const char *call, cl_int code) {
  snprintf(msg, size, "%s failed: %s (%d)", call, ocl__error_name(code), (int)code);
}

/* ---- Devices --------------------------------------------------------------------------- */

/* Reads a string property, truncated to size (the driver refuses a buffer that is too small,
 * so the whole string is read first). */
static void info_string(cl_device_id d, cl_device_info what, char *out, size_t size) {
  out[0] = '\0';
  size_t len = 0;
  if (clGetDeviceInfo(d, what, 0, NULL, &len) != CL_SUCCESS || !len) return;
  char *s = calloc(1, len + 1);
  if (!s) return;
  if (clGetDeviceInfo(d, what, len, s, NULL) == CL_SUCCESS) snprintf(out, size, "%s", s);
  free(s);
}

static bool has_extension(cl_device_id d, const char *ext) {
  size_t len = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS || !len) return false;
  char *s = calloc(1, len + 1);
  if (!s) return false;
  bool found = false;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, len, s, NULL) == CL_SUCCESS) {
    size_t n = strlen(ext);
    for (char *p = strstr(s, ext); p && !found; p = strstr(p + 1, ext))
      found = (p == s || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0');
  }
  free(s);
  return found;
}

static void describe_device(ocl_device *dev) {
  cl_device_id d = dev->id;
  tsr_plugin_device_props *p = &dev->props;
  p->struct_size = sizeof *p;
  cl_device_type type = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  /* Kinds as the driver says: a CPU device (PoCL's, Intel's CPU runtime) is a CPU. `auto`
   * sessions rank GPUs first and CPUs last, breaking ties by runtime order, so the built-in
   * CPU device (always device 0) stays ahead of an OpenCL CPU device running on the same
   * cores; ask for it by name (`--device opencl`) to use it. Accelerators are OTHER. */
  p->kind = (type & CL_DEVICE_TYPE_GPU)   ? TSR_PLUGIN_DEVICE_GPU
            : (type & CL_DEVICE_TYPE_CPU) ? TSR_PLUGIN_DEVICE_CPU
                                          : TSR_PLUGIN_DEVICE_OTHER;
  cl_ulong mem = 0;
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
  p->memory_bytes = mem;
  cl_uint cu = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  p->compute_units = cu;
  size_t wg = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
  dev->max_work_group = wg;
  info_string(d, CL_DEVICE_NAME, p->name, sizeof p->name);
  info_string(d, CL_DEVICE_VENDOR, p->vendor, sizeof p->vendor);
  char drv[64], ver[64], plat[64] = "";
  info_string(d, CL_DRIVER_VERSION, drv, sizeof drv);
  info_string(d, CL_DEVICE_VERSION, ver, sizeof ver); /* "OpenCL 3.0 <vendor text>" */
  size_t plen = 0;
  if (clGetPlatformInfo(dev->platform, CL_PLATFORM_NAME, 0, NULL, &plen) == CL_SUCCESS &&
      plen <= sizeof plat)
    clGetPlatformInfo(dev->platform, CL_PLATFORM_NAME, sizeof plat, plat, NULL);
  plat[sizeof plat - 1] = '\0';
  int major = 0, minor = 0;
  sscanf(ver, "OpenCL %d.%d", &major, &minor);
  snprintf(p->driver, sizeof p->driver, "%s", drv);
  p->flags = 0;
  bool fp16 = has_extension(d, "cl_khr_fp16");
  bool int8 = has_extension(d, "cl_khr_integer_dot_product") ||
              has_extension(d, "cl_arm_integer_dot_product_int8") ||
              has_extension(d, "cl_intel_subgroups_char");
  dev->fp16 = fp16;
  dev->fp64 = has_extension(d, "cl_khr_fp64");
  /* OpenCL lets float division and sqrt be off by a few ulp (GPUs' default); an exact
   * quotient matters where a result is rounded to an integer next (DynamicQuantizeLinear's
   * scale, Round, Cast), so programs ask for it wherever the device offers it. */
  cl_device_fp_config fpc = 0;
  dev->exact_div = clGetDeviceInfo(d, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fpc, &fpc, NULL) ==
                       CL_SUCCESS &&
                   (fpc & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT);
  if (fp16) p->flags |= TSR_PLUGIN_DEVICE_FP16;
  if (int8) p->flags |= TSR_PLUGIN_DEVICE_INT8;
  const char *tname = (type & CL_DEVICE_TYPE_GPU)           ? "gpu"
                      : (type & CL_DEVICE_TYPE_CPU)         ? "cpu"
                      : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator"
                                                            : "custom";
  snprintf(p->features, sizeof p->features, "opencl%d.%d type=%s%s%s%s platform=%.40s", major,
           minor, tname, fp16 ? " fp16" : "", has_extension(d, "cl_khr_fp64") ? " fp64" : "",
           int8 ? " int8-dot" : "", plat);
  for (char *c = strstr(p->features, "platform="); c && *c; c++)
    if (*c == ' ' && c > p->features) *c = '_'; /* keep the list space-separated */
}

static void free_devices(ocl_state *st) {
  for (uint32_t i = 0; i < st->n_devices; i++) {
    ocl_device *d = &st->devices[i];
    for (int v = 0; v < OCL_N_VARIANTS; v++)
      if (d->programs[v]) clReleaseProgram(d->programs[v]);
    if (d->queue) clReleaseCommandQueue(d->queue);
    if (d->ctx) clReleaseContext(d->ctx);
    pthread_mutex_destroy(&d->lock);
  }
  free(st->devices);
  st->devices = NULL;
  st->n_devices = 0;
}

static tsr_plugin_result ocl_init(const tsr_plugin_host *host, void **out_state,
                                  tsr_plugin_error *err) {
  *out_state = NULL;
  ocl_state *st = calloc(1, sizeof *st);
  if (!st) {
    host->set_error(err, "out of memory initialising the OpenCL plugin");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  st->host = host;
  cl_uint n_plat = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &n_plat);
  if (e != CL_SUCCESS || n_plat == 0) {
    /* No ICD installed (CL_PLATFORM_NOT_FOUND_KHR) is an ordinary machine: no devices. */
    if (e != CL_SUCCESS && e != -1001)
      logf_(st, TSR_PLUGIN_LOG_WARNING, "opencl: clGetPlatformIDs failed: %s (%d); no devices",
            ocl__error_name(e), (int)e);
    *out_state = st;
    return TSR_PLUGIN_OK;
  }
  cl_platform_id *plats = calloc(n_plat, sizeof *plats);
  if (!plats || clGetPlatformIDs(n_plat, plats, NULL) != CL_SUCCESS) n_plat = 0;
  for (cl_uint pi = 0; pi < n_plat; pi++) {
    cl_uint nd = 0;
    e = clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
    if (e != CL_SUCCESS || nd == 0) continue;
    cl_device_id *ids = calloc(nd, sizeof *ids);
    ocl_device *grown = realloc(st->devices, (st->n_devices + nd) * sizeof *grown);
    if (!ids || !grown) {
      free(ids);
      if (grown) st->devices = grown;
      break;
    }
    st->devices = grown;
    if (clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, nd, ids, NULL) == CL_SUCCESS) {
      for (cl_uint di = 0; di < nd; di++) {
        cl_bool avail = CL_FALSE, compiler = CL_FALSE;
        clGetDeviceInfo(ids[di], CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
        clGetDeviceInfo(ids[di], CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
        char name[128];
        info_string(ids[di], CL_DEVICE_NAME, name, sizeof name);
        if (!avail || !compiler) {
          logf_(st, TSR_PLUGIN_LOG_INFO, "opencl: skipping device '%s': %s", name,
                !avail ? "not available" : "no OpenCL C compiler");
          continue;
        }
        ocl_device *d = &st->devices[st->n_devices];
        memset(d, 0, sizeof *d);
        d->platform = plats[pi];
        d->id = ids[di];
        pthread_mutex_init(&d->lock, NULL);
        describe_device(d);
        st->n_devices++;
      }
    }
    free(ids);
  }
  free(plats);
  *out_state = st;
  return TSR_PLUGIN_OK;
}

static void ocl_shutdown(void *state) {
  ocl_state *st = state;
  if (!st) return;
  free_devices(st);
  free(st);
}

static uint32_t ocl_device_count(void *state) { return ((ocl_state *)state)->n_devices; }

static tsr_plugin_result ocl_device_props(void *state, uint32_t device,
                                          tsr_plugin_device_props *out) {
  ocl_state *st = state;
  if (device >= st->n_devices) return TSR_PLUGIN_ERROR_INVALID;
  *out = st->devices[device].props;
  return TSR_PLUGIN_OK;
}

/* Records a failed call on an object of context ctx. When the error may mean the device was
 * lost or reset (a GPU reset, a driver unloaded, an eGPU unplugged: drivers then answer
 * CL_DEVICE_NOT_AVAILABLE, CL_OUT_OF_RESOURCES or CL_INVALID_COMMAND_QUEUE, and the context
 * stays unusable even once the device is back) and ctx is still the device's, the device is
 * marked broken so that the next compile or allocation starts over in a new context. A false
 * alarm costs only that: objects made earlier keep their own context. Returns whether it marked
 * the device now. note_failure_locked is the same with dev->lock held. */
static bool note_failure_locked(const ocl_state *st, ocl_device *dev, cl_context ctx, cl_int e) {
  if (e != CL_DEVICE_NOT_AVAILABLE && e != CL_OUT_OF_RESOURCES && e != CL_INVALID_COMMAND_QUEUE &&
      e != CL_INVALID_CONTEXT && e != CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    return false;
  if (!ctx || ctx != dev->ctx || dev->broken) return false;
  dev->broken = true;
  logf_(st, TSR_PLUGIN_LOG_WARNING,
        "opencl: device '%s' failed with %s (%d); its context will be recreated on next use",
        dev->props.name, ocl__error_name(e), (int)e);
  return true;
}

static bool note_failure(const ocl_state *st, ocl_device *dev, cl_context ctx, cl_int e) {
  pthread_mutex_lock(&dev->lock);
  bool marked = note_failure_locked(st, dev, ctx, e);
  pthread_mutex_unlock(&dev->lock);
  return marked;
}

/* Creates the device's context and queue if needed, in place of a broken one; call with
 * dev->lock held. */
static bool ensure_context(ocl_device *dev, char *msg, size_t size) {
  if (dev->broken) {
    for (int v = 0; v < OCL_N_VARIANTS; v++)
      if (dev->programs[v]) clReleaseProgram(dev->programs[v]);
    memset(dev->programs, 0, sizeof dev->programs);
    if (dev->queue) clReleaseCommandQueue(dev->queue);
    if (dev->ctx) clReleaseContext(dev->ctx);
    dev->queue = NULL;
    dev->ctx = NULL;
    dev->broken = false;
  }
  if (dev->ctx) return true;
  cl_int e = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->platform, 0};
  dev->ctx = clCreateContext(props, 1, &dev->id, NULL, NULL, &e);
  if (!dev->ctx || e != CL_SUCCESS) {
    dev->ctx = NULL;
    cl_fail(msg, size, "clCreateContext", e);
    return false;
  }
  dev->queue = clCreateCommandQueue(dev->ctx, dev->id, 0, &e);
  if (!dev->queue || e != CL_SUCCESS) {
    clReleaseContext(dev->ctx);
    dev->ctx = NULL;
    dev->queue = NULL;
    cl_fail(msg, size, "clCreateCommandQueue", e);
    return false;
  }
  return true;
}

/* ---- The program and its on-disk cache ------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static bool mkdir_p(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    int r = mkdir(path, 0755);
    *p = '/';
    if (r != 0 && errno != EEXIST) return false;
  }
  return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* The cache folder: $XDG_CACHE_HOME/tessera/opencl, else ~/.cache/tessera/opencl. */
static bool cache_dir(char *out, size_t size) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(out, size, "%s/tessera/opencl", xdg);
  else if (home && *home) snprintf(out, size, "%s/.cache/tessera/opencl", home);
  else return false;
  return true;
}

/* The cache key covers the device name, driver version, build options and the source, so a
 * new driver or a changed kernel never picks up a stale binary. */
static void cache_file(const ocl_device *dev, const char *options, const char *dir, char *out,
                       size_t size) {
  char drv[128];
  info_string(dev->id, CL_DRIVER_VERSION, drv, sizeof drv);
  uint64_t h = 1469598103934665603ull;
  h = fnv1a(h, dev->props.name, strlen(dev->props.name) + 1);
  h = fnv1a(h, drv, strlen(drv) + 1);
  h = fnv1a(h, options, strlen(options) + 1);
  h = fnv1a(h, ocl_kernels_source, sizeof ocl_kernels_source);
  snprintf(out, size, "%s/%016llx.bin", dir, (unsigned long long)h);
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL) {
      if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
      } else {
        *len = (size_t)n;
      }
    }
  }
  fclose(f);
  return buf;
}

/* Writes the program's binary to the cache; any failure only means no cache next time. */
static void cache_store(cl_program prog, const char *dir, const char *path) {
  size_t len = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS ||
      !len)
    return;
  unsigned char *bin = malloc(len);
  if (!bin) return;
  unsigned char *bins[1] = {bin};
  char dirbuf[4096], tmp[4200];
  snprintf(dirbuf, sizeof dirbuf, "%s", dir);
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS &&
      mkdir_p(dirbuf)) {
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f) {
      bool ok = fwrite(bin, 1, len, f) == len;
      ok = (fclose(f) == 0) && ok;
      if (!ok || rename(tmp, path) != 0) remove(tmp);
    }
  }
  free(bin);
}

static char *build_log(cl_program prog, cl_device_id dev) {
  size_t len = 0;
  clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
  char *log = calloc(1, len + 1);
  if (log && len) clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, len, log, NULL);
  return log;
}

/* Builds the device's program once: from the cached binary when there is one that builds,
 * else from source. Call with dev->lock held. */
static bool ensure_program(ocl_state *st, ocl_device *dev, ocl_variant variant, char *msg,
                           size_t size) {
  if (!ensure_context(dev, msg, size)) return false;
  if (dev->programs[variant]) return true;
  /* TESSERA_OPENCL_BUILD_OPTIONS adds options to the OpenCL C build (and to the cache key). */
  char options[1024];
  const char *extra = getenv("TESSERA_OPENCL_BUILD_OPTIONS");
  static const char *const variant_flag[OCL_N_VARIANTS] = {"", " -DOCL_FP16",
                                                          " -DOCL_FP16_EMULATE"};
  snprintf(options, sizeof options, "-cl-std=CL1.2%s%s%s%s", variant_flag[variant],
           dev->exact_div ? " -cl-fp32-correctly-rounded-divide-sqrt" : "",
           extra && *extra ? " " : "", extra ? extra : "");
  char dir[4096] = "", path[4400] = "";
  bool cache = cache_dir(dir, sizeof dir);
  if (cache) cache_file(dev, options, dir, path, sizeof path);
  cl_int e = CL_SUCCESS;
  if (cache) {
    size_t len = 0;
    unsigned char *bin = read_file(path, &len);
    if (bin) {
      const unsigned char *bins[1] = {bin};
      cl_int status = CL_SUCCESS;
      cl_program prog = clCreateProgramWithBinary(dev->ctx, 1, &dev->id, &len, bins, &status, &e);
      free(bin);
      if (prog && e == CL_SUCCESS && status == CL_SUCCESS &&
          clBuildProgram(prog, 1, &dev->id, options, NULL, NULL) == CL_SUCCESS) {
        dev->programs[variant] = prog;
        return true;
      }
      if (prog) clReleaseProgram(prog);
      logf_(st, TSR_PLUGIN_LOG_INFO, "opencl: ignoring unusable cached program %s", path);
    }
  }
  const char *src = ocl_kernels_source;
  cl_program prog = clCreateProgramWithSource(dev->ctx, 1, &src, NULL, &e);
  if (!prog || e != CL_SUCCESS) {
    cl_fail(msg, size, "clCreateProgramWithSource", e);
    note_failure_locked(st, dev, dev->ctx, e);
    return false;
  }
  e = clBuildProgram(prog, 1, &dev->id, options, NULL, NULL);
  if (e != CL_SUCCESS) {
    note_failure_locked(st, dev, dev->ctx, e); /* not for CL_BUILD_PROGRAM_FAILURE */
    char *log = build_log(prog, dev->id);
    snprintf(msg, size, "clBuildProgram failed for device '%s' (options '%s'): %s (%d); build "
             "log:\n%.*s", dev->props.name, options, ocl__error_name(e), (int)e, OCL_MAX_LOG,
             log && *log ? log : "(empty)");
    free(log);
    clReleaseProgram(prog);
    return false;
  }
  if (cache) cache_store(prog, dir, path);
  dev->programs[variant] = prog;
  return true;
}

/* ---- Buffers --------------------------------------------------------------------------- */

static tsr_plugin_result ocl_alloc(void *state, uint32_t device, uint64_t size, void **out,
                                   tsr_plugin_error *err) {
  ocl_state *st = state;
  *out = NULL;
  if (device >= st->n_devices) {
    set_error(st, err, "opencl: no device %u", device);
    return TSR_PLUGIN_ERROR_INVALID;
  }
  ocl_device *dev = &st->devices[device];
  char msg[512];
  /* The buffer keeps references to the context it is made in and its queue, so that a new
   * context (after a failure, see note_failure) never meets it. */
  cl_context ctx = NULL;
  cl_command_queue queue = NULL;
  pthread_mutex_lock(&dev->lock);
  bool ok = ensure_context(dev, msg, sizeof msg);
  if (ok) {
    ctx = dev->ctx;
    queue = dev->queue;
    clRetainContext(ctx);
    clRetainCommandQueue(queue);
  }
  pthread_mutex_unlock(&dev->lock);
  if (!ok) {
    set_error(st, err, "opencl: %s", msg);
    return TSR_PLUGIN_ERROR_DEVICE;
  }
  /* TESSERA_OPENCL_MEMORY_LIMIT=BYTES: each device behaves as if it had only that much memory
   * for buffers, and an allocation beyond it fails as the driver's out-of-memory does. Read
   * at every allocation, so that a test can make a device run out in the middle of a session
   * (drivers that allocate lazily, PoCL among them, never fail clCreateBuffer). */
  const char *limit_s = getenv("TESSERA_OPENCL_MEMORY_LIMIT");
  uint64_t limit = limit_s && *limit_s ? strtoull(limit_s, NULL, 10) : 0;
  uint64_t live = __atomic_add_fetch(&dev->live_bytes, size, __ATOMIC_RELAXED);
  if (limit && live > limit) {
    __atomic_sub_fetch(&dev->live_bytes, size, __ATOMIC_RELAXED);
    clReleaseCommandQueue(queue);
    clReleaseContext(ctx);
    set_error(st, err,
              "opencl: clCreateBuffer(%llu bytes) on '%s' failed: "
              "CL_MEM_OBJECT_ALLOCATION_FAILURE (-4) (TESSERA_OPENCL_MEMORY_LIMIT=%llu bytes, "
              "%llu in use)",
              (unsigned long long)size, dev->props.name, (unsigned long long)limit,
              (unsigned long long)(live - size));
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  ocl_buffer *b = calloc(1, sizeof *b);
  if (!b) {
    __atomic_sub_fetch(&dev->live_bytes, size, __ATOMIC_RELAXED);
    clReleaseCommandQueue(queue);
    clReleaseContext(ctx);
    set_error(st, err, "opencl: out of host memory for a buffer handle");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  cl_int e = CL_SUCCESS;
  b->size = size;
  b->ctx = ctx;
  b->queue = queue;
  b->mem = clCreateBuffer(ctx, CL_MEM_READ_WRITE, size ? (size_t)size : 4, NULL, &e);
  if (!b->mem || e != CL_SUCCESS) {
    free(b);
    __atomic_sub_fetch(&dev->live_bytes, size, __ATOMIC_RELAXED);
    clReleaseCommandQueue(queue);
    clReleaseContext(ctx);
    note_failure(st, dev, ctx, e);
    set_error(st, err, "opencl: clCreateBuffer(%llu bytes) on '%s' failed: %s (%d)",
              (unsigned long long)size, dev->props.name, ocl__error_name(e), (int)e);
    return e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES ||
                   e == CL_OUT_OF_HOST_MEMORY || e == CL_INVALID_BUFFER_SIZE
               ? TSR_PLUGIN_ERROR_OUT_OF_MEMORY
               : TSR_PLUGIN_ERROR_DEVICE;
  }
  *out = b;
  return TSR_PLUGIN_OK;
}

static void ocl_free(void *state, uint32_t device, void *buffer) {
  ocl_state *st = state;
  ocl_buffer *b = buffer;
  if (!b) return;
  if (device < st->n_devices)
    __atomic_sub_fetch(&st->devices[device].live_bytes, b->size, __ATOMIC_RELAXED);
  clReleaseMemObject(b->mem);
  clReleaseCommandQueue(b->queue);
  clReleaseContext(b->ctx);
  free(b);
}

static tsr_plugin_result ocl_write(void *state, uint32_t device, void *buffer, uint64_t offset,
                                   const void *src, uint64_t size, tsr_plugin_error *err) {
  ocl_state *st = state;
  ocl_buffer *b = buffer;
  if (!size) return TSR_PLUGIN_OK;
  ocl_device *dev = &st->devices[device];
  pthread_mutex_lock(&dev->lock);
  cl_int e = clEnqueueWriteBuffer(b->queue, b->mem, CL_TRUE, (size_t)offset, (size_t)size, src,
                                  0, NULL, NULL);
  pthread_mutex_unlock(&dev->lock);
  if (e != CL_SUCCESS) {
    note_failure(st, dev, b->ctx, e);
    set_error(st, err, "opencl: clEnqueueWriteBuffer(%llu bytes at %llu) failed: %s (%d)",
              (unsigned long long)size, (unsigned long long)offset, ocl__error_name(e), (int)e);
    return TSR_PLUGIN_ERROR_DEVICE;
  }
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result ocl_read(void *state, uint32_t device, const void *buffer,
                                  uint64_t offset, void *dst, uint64_t size,
                                  tsr_plugin_error *err) {
  ocl_state *st = state;
  const ocl_buffer *b = buffer;
  if (!size) return TSR_PLUGIN_OK;
  ocl_device *dev = &st->devices[device];
  pthread_mutex_lock(&dev->lock);
  cl_int e = clEnqueueReadBuffer(b->queue, b->mem, CL_TRUE, (size_t)offset, (size_t)size, dst,
                                 0, NULL, NULL);
  pthread_mutex_unlock(&dev->lock);
  if (e != CL_SUCCESS) {
    note_failure(st, dev, b->ctx, e);
    set_error(st, err, "opencl: clEnqueueReadBuffer(%llu bytes at %llu) failed: %s (%d)",
              (unsigned long long)size, (unsigned long long)offset, ocl__error_name(e), (int)e);
    return TSR_PLUGIN_ERROR_DEVICE;
  }
  return TSR_PLUGIN_OK;
}

/* ---- Capability ------------------------------------------------------------------------ */

static tsr_plugin_result ocl_supports(void *state, uint32_t device, const tsr_plugin_graph *g,
                                      uint32_t node, tsr_plugin_support *out) {
  ocl_state *st = state;
  out->supported = 0;
  out->reason = TSR_PLUGIN_REASON_NONE;
  out->cost_us = -1.0;
  out->message[0] = '\0';
  if (device >= st->n_devices) return TSR_PLUGIN_ERROR_INVALID;
  ocl_lower L = {.st = st,
                 .dev = &st->devices[device],
                 .g = g,
                 .api = st->host->graph,
                 .node = node,
                 .exe = NULL,
                 .msg = out->message,
                 .msg_size = sizeof out->message};
  int r = ocl__lower_node(&L);
  if (r == 0) {
    out->supported = 1;
  } else {
    out->reason = r > 0 ? (uint32_t)r : TSR_PLUGIN_REASON_OTHER;
  }
  return TSR_PLUGIN_OK;
}

/* ---- Compile: steps, arguments, constants ---------------------------------------------- */

static bool push_owned(ocl_exe *exe, cl_mem m) {
  if (exe->n_owned == exe->cap_owned) {
    uint32_t cap = exe->cap_owned ? exe->cap_owned * 2 : 16;
    cl_mem *grown = realloc(exe->owned, cap * sizeof *grown);
    if (!grown) return false;
    exe->owned = grown;
    exe->cap_owned = cap;
  }
  exe->owned[exe->n_owned++] = m;
  return true;
}

static ocl_step *new_step(ocl_lower *L) {
  ocl_exe *exe = L->exe;
  if (exe->n_steps == exe->cap_steps) {
    uint32_t cap = exe->cap_steps ? exe->cap_steps * 2 : 32;
    ocl_step *grown = realloc(exe->steps, cap * sizeof *grown);
    if (!grown) {
      snprintf(L->msg, L->msg_size, "out of host memory");
      return NULL;
    }
    exe->steps = grown;
    exe->cap_steps = cap;
  }
  ocl_step *s = &exe->steps[exe->n_steps++];
  memset(s, 0, sizeof *s);
  s->node = L->node;
  s->copy_src = s->copy_dst = -1;
  return s;
}

ocl_step *ocl__step_kernel(ocl_lower *L, const char *kernel_name) {
  ocl_step *s = new_step(L);
  if (!s) return NULL;
  cl_int e = CL_SUCCESS;
  s->kernel = clCreateKernel(L->exe->program, kernel_name, &e);
  if (!s->kernel || e != CL_SUCCESS) {
    s->kernel = NULL;
    L->exe->n_steps--;
    snprintf(L->msg, L->msg_size, "clCreateKernel(%s) failed: %s (%d)", kernel_name,
             ocl__error_name(e), (int)e);
    return NULL;
  }
  return s;
}

static cl_mem const_mem(ocl_lower *L, int32_t value);

ocl_step *ocl__step_copy(ocl_lower *L, int32_t src, int32_t dst, uint64_t bytes) {
  /* A constant source (a Scatter's data, say) is uploaded now, as kernel arguments are. */
  if (src >= 0 && L->exe->values[src].const_data && !const_mem(L, src)) return NULL;
  ocl_step *s = new_step(L);
  if (!s) return NULL;
  s->copy_src = src;
  s->copy_dst = dst;
  s->copy_bytes = bytes;
  return s;
}

static int set_arg(ocl_lower *L, ocl_step *s, cl_uint index, size_t size, const void *v) {
  cl_int e = clSetKernelArg(s->kernel, index, size, v);
  if (e != CL_SUCCESS) {
    snprintf(L->msg, L->msg_size, "clSetKernelArg(%u) failed: %s (%d)", index,
             ocl__error_name(e), (int)e);
    return OCL_LOWER_DEVICE_ERROR;
  }
  return 0;
}

static cl_uint next_index(const ocl_step *s) {
  cl_uint idx = 0;
  for (uint32_t i = 0; i < s->n_args; i++) idx += s->args[i].kind == OCL_ARG_VALUE ? 2 : 1;
  return idx;
}

/* Uploads a constant value once per executable. */
static cl_mem const_mem(ocl_lower *L, int32_t value) {
  ocl_exe *exe = L->exe;
  if (exe->consts[value]) return exe->consts[value];
  const tsr_plugin_value *v = &exe->values[value];
  cl_int e = CL_SUCCESS;
  size_t bytes = v->byte_size ? (size_t)v->byte_size : 4;
  cl_mem m = clCreateBuffer(exe->ctx,
                            CL_MEM_READ_ONLY | (v->byte_size ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                            v->byte_size ? (void *)v->const_data : NULL, &e);
  if (!m || e != CL_SUCCESS) {
    snprintf(L->msg, L->msg_size, "clCreateBuffer for constant '%s' (%llu bytes) failed: %s (%d)",
             v->name, (unsigned long long)v->byte_size, ocl__error_name(e), (int)e);
    return NULL;
  }
  exe->consts[value] = m;
  return m;
}

int ocl__arg_value(ocl_lower *L, ocl_step *s, int32_t value, uint32_t esize) {
  cl_uint idx = next_index(s);
  ocl_arg *a = &s->args[s->n_args++];
  *a = (ocl_arg){.kind = OCL_ARG_VALUE, .index = idx, .value = value, .esize = esize};
  /* Constants and absent tensors are fixed now; other values are bound per execute. */
  if (value < 0 || L->exe->values[value].const_data) {
    cl_mem m = value < 0 ? L->exe->dummy : const_mem(L, value);
    if (!m) return OCL_LOWER_DEVICE_ERROR;
    cl_ulong zero = 0;
    if (set_arg(L, s, idx, sizeof m, &m) || set_arg(L, s, idx + 1, sizeof zero, &zero))
      return OCL_LOWER_DEVICE_ERROR;
  }
  return 0;
}

int ocl__arg_params(ocl_lower *L, ocl_step *s, const int32_t *p, size_t count) {
  cl_int e = CL_SUCCESS;
  cl_mem m = clCreateBuffer(L->exe->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            (count ? count : 1) * sizeof(int32_t), (void *)p, &e);
  if (!m || e != CL_SUCCESS) {
    snprintf(L->msg, L->msg_size, "clCreateBuffer for kernel parameters failed: %s (%d)",
             ocl__error_name(e), (int)e);
    return OCL_LOWER_DEVICE_ERROR;
  }
  if (!push_owned(L->exe, m)) {
    clReleaseMemObject(m);
    snprintf(L->msg, L->msg_size, "out of host memory");
    return OCL_LOWER_DEVICE_ERROR;
  }
  cl_uint idx = next_index(s);
  s->args[s->n_args++] = (ocl_arg){.kind = OCL_ARG_MEM, .index = idx, .value = -1};
  return set_arg(L, s, idx, sizeof m, &m);
}

int ocl__arg_int(ocl_lower *L, ocl_step *s, int32_t v) {
  cl_uint idx = next_index(s);
  s->args[s->n_args++] = (ocl_arg){.kind = OCL_ARG_INT, .index = idx, .value = -1};
  cl_int x = v;
  return set_arg(L, s, idx, sizeof x, &x);
}

int ocl__arg_float(ocl_lower *L, ocl_step *s, float v) {
  cl_uint idx = next_index(s);
  s->args[s->n_args++] = (ocl_arg){.kind = OCL_ARG_FLOAT, .index = idx, .value = -1};
  cl_float x = v;
  return set_arg(L, s, idx, sizeof x, &x);
}

int ocl__arg_ulong(ocl_lower *L, ocl_step *s, uint64_t v) {
  cl_uint idx = next_index(s);
  s->args[s->n_args++] = (ocl_arg){.kind = OCL_ARG_ULONG, .index = idx, .value = -1};
  cl_ulong x = v;
  return set_arg(L, s, idx, sizeof x, &x);
}

/* A read-write buffer of `bytes` that the executable owns (released with it), filled from
 * `init` when non-NULL: state that a node carries between its launches (an RNN's hidden state)
 * or parameters several launches share. execute() holds exe->lock, so runs never share it. */
cl_mem ocl__buffer(ocl_lower *L, uint64_t bytes, const void *init) {
  cl_int e = CL_SUCCESS;
  cl_mem m = clCreateBuffer(L->exe->ctx, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                            bytes ? (size_t)bytes : 4, (void *)init, &e);
  if (!m || e != CL_SUCCESS) {
    snprintf(L->msg, L->msg_size, "clCreateBuffer for %llu bytes of scratch failed: %s (%d)",
             (unsigned long long)bytes, ocl__error_name(e), (int)e);
    return NULL;
  }
  if (!push_owned(L->exe, m)) {
    clReleaseMemObject(m);
    snprintf(L->msg, L->msg_size, "out of host memory");
    return NULL;
  }
  return m;
}

int ocl__arg_mem(ocl_lower *L, ocl_step *s, cl_mem m) {
  cl_uint idx = next_index(s);
  s->args[s->n_args++] = (ocl_arg){.kind = OCL_ARG_MEM, .index = idx, .value = -1};
  return set_arg(L, s, idx, sizeof m, &m);
}

int ocl__arg_check(ocl_lower *L, ocl_step *s) {
  if (!L->exe->errbuf) {
    const cl_int zero = 0;
    if (!(L->exe->errbuf = ocl__buffer(L, sizeof zero, &zero)))
      return OCL_LOWER_DEVICE_ERROR;
  }
  int r = ocl__arg_mem(L, s, L->exe->errbuf);
  return r ? r : ocl__arg_int(L, s, (int32_t)L->node + 1);
}

void ocl__launch_1d(ocl_step *s, uint64_t n) {
  s->dims = 1;
  s->global[0] = (size_t)((n + 63) / 64 * 64);
  s->local[0] = 0;
}

static void ocl_release(void *state, void *executable) {
  ocl_exe *exe = executable;
  if (!exe) return;
  for (uint32_t i = 0; i < exe->n_steps; i++)
    if (exe->steps[i].kernel) clReleaseKernel(exe->steps[i].kernel);
  for (uint32_t i = 0; i < exe->n_owned; i++) clReleaseMemObject(exe->owned[i]);
  for (uint32_t i = 0; exe->consts && i < exe->n_values; i++)
    if (exe->consts[i]) clReleaseMemObject(exe->consts[i]);
  if (exe->dummy) clReleaseMemObject(exe->dummy);
  if (exe->queue) clReleaseCommandQueue(exe->queue);
  if (exe->program) clReleaseProgram(exe->program);
  if (exe->ctx) clReleaseContext(exe->ctx);
  pthread_mutex_destroy(&exe->lock);
  free(exe->steps);
  free(exe->owned);
  free(exe->consts);
  free(exe->values);
  free(exe->notes);
  free(exe);
}

/* TSR_PRECISION_FP16 of tessera.h (plugin.h states the bits: 1 fp32, 2 fp16, 4 int8). */
#define OCL_PRECISION_FP16 2u

/* The rule for fp16: it is a permission, never a requirement. When the session's precisions
 * include fp16 and the device has cl_khr_fp16, the partition uses the fp16 variant; otherwise
 * it runs in float32, silently (supports() does not see the precisions, and float32 satisfies
 * a session that allows fp16). TESSERA_OPENCL_FP16=emulate uses the emulated variant on any
 * device (tests), =off keeps float32. */
static ocl_variant choose_variant(const ocl_device *dev, const tsr_plugin_compile_options *o) {
  uint32_t prec = o && o->struct_size >= offsetof(tsr_plugin_compile_options, precisions) +
                                              sizeof o->precisions
                      ? o->precisions
                      : 0;
  if (!(prec & OCL_PRECISION_FP16)) return OCL_VARIANT_FP32;
  const char *env = getenv("TESSERA_OPENCL_FP16");
  if (env && !strcmp(env, "off")) return OCL_VARIANT_FP32;
  if (env && !strcmp(env, "emulate")) return OCL_VARIANT_FP16_EMULATE;
  return dev->fp16 ? OCL_VARIANT_FP16 : OCL_VARIANT_FP32;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Each node's note (node_note): the kernels its steps launch, in order ("copy" for a buffer
 * copy, "none" for a node that moves no data), a run of launches of one kernel written once
 * with its count ("concat_u32 x2"), and the precision the program computes in. Without memory
 * for them the notes are left out. */
static size_t note_append(char *b, size_t size, size_t len, const char *name, unsigned count) {
  if (!count || len + 1 >= size)
    return len;
  int n = count > 1 ? snprintf(b + len, size - len, "%s%s x%u", len ? ", " : "", name, count)
                    : snprintf(b + len, size - len, "%s%s", len ? ", " : "", name);
  return n < 0 ? len : len + (size_t)n;
}

static void build_notes(ocl_exe *exe) {
  exe->notes = calloc(exe->n_nodes + 1, sizeof *exe->notes);
  if (!exe->notes)
    return;
  static const char *const precision[OCL_N_VARIANTS] = {"float32", "fp16", "fp16 emulated"};
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    char *b = exe->notes[i];
    const size_t size = sizeof exe->notes[i];
    size_t len = 0;
    char prev[64] = "";
    unsigned run = 0;
    for (uint32_t k = 0; k < exe->n_steps; k++) {
      const ocl_step *s = &exe->steps[k];
      if (s->node != i)
        continue;
      char name[64] = "copy";
      if (s->kernel && clGetKernelInfo(s->kernel, CL_KERNEL_FUNCTION_NAME, sizeof name, name,
                                       NULL) != CL_SUCCESS)
        snprintf(name, sizeof name, "?");
      if (run && !strcmp(name, prev)) {
        run++;
        continue;
      }
      len = note_append(b, size, len, prev, run);
      memcpy(prev, name, sizeof prev);
      run = 1;
    }
    len = note_append(b, size, len, prev, run);
    if (len + 1 < size)
      snprintf(b + len, size - len, "%s(%s)", len ? " " : "none ", precision[exe->variant]);
  }
}

static tsr_plugin_result ocl_compile(void *state, uint32_t device, const tsr_plugin_graph *g,
                                     const tsr_plugin_compile_options *options, void **out,
                                     tsr_plugin_error *err) {
  ocl_state *st = state;
  const tsr_plugin_graph_api *api = st->host->graph;
  *out = NULL;
  uint64_t t_start = now_ns();
  if (device >= st->n_devices) {
    set_error(st, err, "opencl: no device %u", device);
    return TSR_PLUGIN_ERROR_INVALID;
  }
  ocl_device *dev = &st->devices[device];
  char msg[OCL_MAX_LOG + 256];
  ocl_variant variant = choose_variant(dev, options);
  ocl_exe *exe = calloc(1, sizeof *exe);
  if (!exe) {
    set_error(st, err, "opencl: out of host memory compiling a partition");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  pthread_mutex_init(&exe->lock, NULL);
  exe->st = st;
  exe->dev = dev;
  exe->variant = variant;
  exe->g = g;
  exe->n_nodes = api->node_count(g);
  exe->n_values = api->value_count(g);
  exe->values = calloc(exe->n_values + 1, sizeof *exe->values);
  exe->consts = calloc(exe->n_values + 1, sizeof *exe->consts);
  if (!exe->values || !exe->consts) {
    ocl_release(st, exe);
    set_error(st, err, "opencl: out of host memory compiling a partition");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  for (uint32_t v = 0; v < exe->n_values; v++) api->value_info(g, v, &exe->values[v]);
  cl_int e = CL_SUCCESS;
  for (int attempt = 0; !exe->queue; attempt++) {
    /* The executable keeps the context and program it is compiled against: the device may
     * replace its own after a failure (note_failure) while this one lives. */
    pthread_mutex_lock(&dev->lock);
    bool ok = ensure_program(st, dev, variant, msg, sizeof msg);
    bool retry = !ok && dev->broken && attempt == 0; /* the build was first to notice */
    if (ok) {
      exe->ctx = dev->ctx;
      exe->program = dev->programs[variant];
      clRetainContext(exe->ctx);
      clRetainProgram(exe->program);
    }
    pthread_mutex_unlock(&dev->lock);
    if (retry) continue;
    if (!ok) {
      ocl_release(st, exe);
      set_error(st, err, "opencl: %s", msg);
      return TSR_PLUGIN_ERROR_DEVICE;
    }
    exe->queue = clCreateCommandQueue(exe->ctx, dev->id, 0, &e);
    if (exe->queue && e == CL_SUCCESS) break;
    exe->queue = NULL;
    /* A device reset while nothing ran is first noticed here (or by the build above): try
     * once more, in a new context. */
    if (note_failure(st, dev, exe->ctx, e) && attempt == 0) {
      clReleaseProgram(exe->program);
      clReleaseContext(exe->ctx);
      exe->program = NULL;
      exe->ctx = NULL;
      continue;
    }
    ocl_release(st, exe);
    set_error(st, err, "opencl: clCreateCommandQueue failed: %s (%d)", ocl__error_name(e), (int)e);
    return TSR_PLUGIN_ERROR_DEVICE;
  }
  uint64_t t_program = now_ns();
  exe->dummy = clCreateBuffer(exe->ctx, CL_MEM_READ_WRITE, 16, NULL, &e);
  if (!exe->dummy || e != CL_SUCCESS) {
    exe->dummy = NULL;
    note_failure(st, dev, exe->ctx, e);
    ocl_release(st, exe);
    set_error(st, err, "opencl: clCreateBuffer failed: %s (%d)", ocl__error_name(e), (int)e);
    return TSR_PLUGIN_ERROR_DEVICE;
  }
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    msg[0] = '\0';
    ocl_lower L = {.st = st, .dev = dev, .g = g, .api = api, .node = i, .exe = exe,
                   .msg = msg, .msg_size = sizeof msg};
    int r = ocl__lower_node(&L);
    if (r != 0) {
      set_error(st, err, "node '%s' (%s): opencl: %s", api->node_name(g, i),
                api->node_op_type(g, i), msg[0] ? msg : "cannot lower the node");
      ocl_release(st, exe);
      return r > 0 ? TSR_PLUGIN_ERROR_UNSUPPORTED : TSR_PLUGIN_ERROR_DEVICE;
    }
  }
  /* Where a session's creation time goes (TESSERA_LOG=info): the context, queue and program
   * (from the disk cache or built), then the lowering, which uploads the weights. */
  uint64_t t_end = now_ns(), const_bytes = 0;
  for (uint32_t v = 0; v < exe->n_values; v++)
    if (exe->values[v].const_data) const_bytes += exe->values[v].byte_size;
  logf_(st, TSR_PLUGIN_LOG_INFO,
        "opencl: compiled %u nodes for '%s' in %.1f ms: context, queue and program %.1f ms, "
        "lowering %.1f ms (%.1f MB of constants uploaded)",
        exe->n_nodes, dev->props.name, (double)(t_end - t_start) / 1e6,
        (double)(t_program - t_start) / 1e6, (double)(t_end - t_program) / 1e6,
        (double)const_bytes / 1e6);
  build_notes(exe);
  *out = exe;
  return TSR_PLUGIN_OK;
}

static const char *ocl_node_note(void *state, void *executable, uint32_t node) {
  const ocl_exe *exe = executable;
  return exe && exe->notes && node < exe->n_nodes ? exe->notes[node] : NULL;
}

/* ---- Execute --------------------------------------------------------------------------- */

/* Resolves a bound value to its cl_mem and byte offset. */
static bool resolve(ocl_exe *exe, const tsr_plugin_binding *bindings, int32_t v, cl_mem *mem,
                    uint64_t *offset) {
  if (exe->values[v].const_data) {
    *mem = exe->consts[v];
    *offset = 0;
    return *mem != NULL;
  }
  const ocl_buffer *b = bindings[v].buffer;
  if (!b) return false;
  *mem = b->mem;
  *offset = bindings[v].offset;
  return true;
}

static tsr_plugin_result run_steps(ocl_exe *exe, const tsr_plugin_binding *bindings,
                                   const tsr_plugin_exec_options *options, char *msg,
                                   size_t size, uint32_t *failed_node) {
  const ocl_state *st = exe->st;
  bool timed = options && options->struct_size >= sizeof(tsr_plugin_exec_options) &&
               options->node_time;
  uint64_t t0 = timed ? now_ns() : 0;
  for (uint32_t i = 0; i < exe->n_steps; i++) {
    ocl_step *s = &exe->steps[i];
    *failed_node = s->node;
    cl_int e = CL_SUCCESS;
    if (!s->kernel) {
      cl_mem src, dst;
      uint64_t so, dso;
      if (!resolve(exe, bindings, s->copy_src, &src, &so) ||
          !resolve(exe, bindings, s->copy_dst, &dst, &dso)) {
        snprintf(msg, size, "a value of the copy has no buffer bound");
        return TSR_PLUGIN_ERROR_INVALID;
      }
      if (s->copy_bytes && !(src == dst && so == dso))
        e = clEnqueueCopyBuffer(exe->queue, src, dst, (size_t)so, (size_t)dso,
                                (size_t)s->copy_bytes, 0, NULL, NULL);
      if (e != CL_SUCCESS) {
        cl_fail(msg, size, "clEnqueueCopyBuffer", e);
        return TSR_PLUGIN_ERROR_DEVICE;
      }
    } else {
      for (uint32_t a = 0; a < s->n_args; a++) {
        const ocl_arg *arg = &s->args[a];
        if (arg->kind != OCL_ARG_VALUE || arg->value < 0 || exe->values[arg->value].const_data)
          continue;
        cl_mem m;
        uint64_t off;
        if (!resolve(exe, bindings, arg->value, &m, &off)) {
          snprintf(msg, size, "value '%s' has no buffer bound", exe->values[arg->value].name);
          return TSR_PLUGIN_ERROR_INVALID;
        }
        if (off % arg->esize) {
          snprintf(msg, size, "value '%s' is bound at offset %llu, not a multiple of its "
                   "element size %u", exe->values[arg->value].name, (unsigned long long)off,
                   arg->esize);
          return TSR_PLUGIN_ERROR_INVALID;
        }
        cl_ulong eo = off / arg->esize;
        e = clSetKernelArg(s->kernel, arg->index, sizeof m, &m);
        if (e == CL_SUCCESS) e = clSetKernelArg(s->kernel, arg->index + 1, sizeof eo, &eo);
        if (e != CL_SUCCESS) {
          cl_fail(msg, size, "clSetKernelArg", e);
          return TSR_PLUGIN_ERROR_DEVICE;
        }
      }
      bool empty = false;
      for (cl_uint d = 0; d < s->dims; d++) empty |= s->global[d] == 0;
      if (!empty) {
        e = clEnqueueNDRangeKernel(exe->queue, s->kernel, s->dims, NULL, s->global,
                                   s->local[0] ? s->local : NULL, 0, NULL, NULL);
        if (e != CL_SUCCESS) {
          char name[64] = "";
          clGetKernelInfo(s->kernel, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
          name[sizeof name - 1] = '\0';
          snprintf(msg, size, "clEnqueueNDRangeKernel(%s) failed: %s (%d)", name,
                   ocl__error_name(e), (int)e);
          return TSR_PLUGIN_ERROR_DEVICE;
        }
      }
    }
    /* With per-node times, wait for each node's last step. */
    bool last_of_node = i + 1 == exe->n_steps || exe->steps[i + 1].node != s->node;
    if (timed && last_of_node) {
      e = clFinish(exe->queue);
      if (e != CL_SUCCESS) {
        cl_fail(msg, size, "clFinish", e);
        return TSR_PLUGIN_ERROR_DEVICE;
      }
      uint64_t t1 = now_ns();
      options->node_time(options->node_time_ctx, s->node, t1 - t0);
      t0 = t1;
    }
  }
  (void)st;
  cl_int e = clFinish(exe->queue);
  if (e != CL_SUCCESS) {
    *failed_node = UINT32_MAX;
    cl_fail(msg, size, "clFinish", e);
    return TSR_PLUGIN_ERROR_DEVICE;
  }
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result ocl_execute(void *state, void *executable,
                                     const tsr_plugin_binding *bindings, uint32_t binding_count,
                                     const tsr_plugin_exec_options *options,
                                     tsr_plugin_error *err) {
  ocl_state *st = state;
  ocl_exe *exe = executable;
  if (binding_count < exe->n_values) {
    set_error(st, err, "opencl: execute: %u bindings given for %u values", binding_count,
              exe->n_values);
    return TSR_PLUGIN_ERROR_INVALID;
  }
  /* Buffers allocated after the device's context was replaced (note_failure) cannot meet
   * kernels of the old one. */
  for (uint32_t v = 0; v < exe->n_values; v++) {
    const ocl_buffer *b = bindings[v].buffer;
    if (b && !exe->values[v].const_data && b->ctx != exe->ctx) {
      set_error(st, err, "opencl: value '%s' is bound to a buffer of another OpenCL context than "
                "the partition's: device '%s' failed and was given a new context after this "
                "session was compiled; create a new session", exe->values[v].name,
                exe->dev->props.name);
      return TSR_PLUGIN_ERROR_DEVICE;
    }
  }
  char msg[512] = "";
  uint32_t node = UINT32_MAX;
  pthread_mutex_lock(&exe->lock);
  tsr_plugin_result r = TSR_PLUGIN_OK;
  if (exe->errbuf) { /* the kernels that index with data report a bad index here */
    const cl_int zero = 0;
    cl_int e = clEnqueueFillBuffer(exe->queue, exe->errbuf, &zero, sizeof zero, 0, sizeof zero,
                                   0, NULL, NULL);
    if (e != CL_SUCCESS) {
      cl_fail(msg, sizeof msg, "clEnqueueFillBuffer(index check)", e);
      r = TSR_PLUGIN_ERROR_DEVICE;
    }
  }
  if (r == TSR_PLUGIN_OK) r = run_steps(exe, bindings, options, msg, sizeof msg, &node);
  if (r == TSR_PLUGIN_OK && exe->errbuf) {
    /* One int read back, which waits for the run: the price of checking indices that only the
     * device sees. */
    cl_int bad = 0;
    cl_int e = clEnqueueReadBuffer(exe->queue, exe->errbuf, CL_TRUE, 0, sizeof bad, &bad, 0,
                                   NULL, NULL);
    if (e != CL_SUCCESS) {
      cl_fail(msg, sizeof msg, "clEnqueueReadBuffer(index check)", e);
      r = TSR_PLUGIN_ERROR_DEVICE;
    } else if (bad > 0 && (uint32_t)bad <= exe->n_nodes) {
      node = (uint32_t)bad - 1;
      snprintf(msg, sizeof msg, "an index is out of range for the axis it indexes (negative "
                                "indices count from the end)");
      r = TSR_PLUGIN_ERROR_INVALID;
    }
  }
  /* Leave nothing in flight on failure. A queue that cannot even finish is lost, with its
   * context (note_failure). */
  cl_int fe = r != TSR_PLUGIN_OK ? clFinish(exe->queue) : CL_SUCCESS;
  pthread_mutex_unlock(&exe->lock);
  if (fe != CL_SUCCESS) note_failure(st, exe->dev, exe->ctx, fe);
  if (r != TSR_PLUGIN_OK) {
    const tsr_plugin_graph_api *api = st->host->graph;
    if (node != UINT32_MAX)
      set_error(st, err, "node '%s' (%s): opencl: %s", api->node_name(exe->g, node),
                api->node_op_type(exe->g, node), msg);
    else
      set_error(st, err, "opencl: %s", msg);
  }
  return r;
}

/* The table, answered as version 2 or, to an older host (which never reads node_note), 1.
 * Device memory is not host-visible through this plugin (no host_pointer), and the host stages
 * copies through read() and write() (no copy). */
#define OCL_TABLE(version)                                                                         \
  {                                                                                                \
    .struct_size = sizeof(tsr_plugin_table), .abi_version = (version), .name = "opencl",           \
    .init = ocl_init, .shutdown = ocl_shutdown, .device_count = ocl_device_count,                  \
    .device_props = ocl_device_props, .supports = ocl_supports, .alloc = ocl_alloc,                \
    .free = ocl_free, .write = ocl_write, .read = ocl_read, .host_pointer = NULL,                  \
    .compile = ocl_compile, .execute = ocl_execute, .release_executable = ocl_release,             \
    .copy = NULL, .node_note = ocl_node_note                                                       \
  }
static const tsr_plugin_table ocl_table = OCL_TABLE(2), ocl_table_v1 = OCL_TABLE(1);

TSR_PLUGIN_EXPORT const tsr_plugin_table *tsr_plugin_query(uint32_t host_max_abi_version) {
  return host_max_abi_version >= 2 ? &ocl_table : host_max_abi_version >= 1 ? &ocl_table_v1 : NULL;
}
