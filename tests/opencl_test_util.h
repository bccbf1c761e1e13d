/* What the OpenCL suites (test_opencl.c, test_opencl_lost.c) share: finding the plugin in the
 * build tree, a runtime with it loaded, whether it found a device, and the program cache the
 * tests that do not examine the cache share. Static functions of one header, since each suite
 * is its own executable. */
#ifndef TSR_TESTS_OPENCL_TEST_UTIL_H
#define TSR_TESTS_OPENCL_TEST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static inline bool ocl_test_plugin_path(char *out, size_t size) {
  snprintf(out, size, "%s/../devices/opencl/libtessera_opencl.so", tsr_test_builddir());
  struct stat sb;
  return stat(out, &sb) == 0;
}

/* A runtime with the OpenCL plugin loaded; NULL (and a note naming `suite`) when it is not
 * built. */
static inline tsr_runtime *ocl_test_runtime(const char *suite) {
  char path[4096];
  if (!ocl_test_plugin_path(path, sizeof path)) {
    fprintf(stderr, "%s: plugin not built; skipping\n", suite);
    return NULL;
  }
  tsr_runtime_options ro = {sizeof ro};
  tsr_runtime *rt = NULL;
  ck_assert_ok(tsr_runtime_create(&ro, &rt));
  ck_assert_ok(tsr_runtime_load_plugin(rt, path));
  return rt;
}

static inline bool ocl_test_has_device(tsr_runtime *rt) {
  for (size_t i = 0; i < tsr_runtime_device_count(rt); i++) {
    tsr_device_info di = {sizeof di};
    if (!tsr_runtime_device_info(rt, i, &di) && !strcmp(di.plugin, "opencl"))
      return true;
  }
  return false;
}

/* A runtime with the plugin loaded and an OpenCL device found; NULL (and a note naming
 * `suite`) otherwise: the test then passes without running. */
static inline tsr_runtime *ocl_test_start(const char *suite) {
  tsr_runtime *rt = ocl_test_runtime(suite);
  if (rt && !ocl_test_has_device(rt)) {
    fprintf(stderr, "%s: no OpenCL device on this machine; skipping\n", suite);
    tsr_runtime_destroy(rt);
    rt = NULL;
  }
  return rt;
}

/* A cache folder in the build tree, so that the program (and PoCL's own kernel cache under it)
 * is built once, not once per test. The caller frees the returned path. */
static inline char *ocl_test_shared_cache(void) {
  char *dir = malloc(4096);
  ck_assert_ptr_nonnull(dir);
  snprintf(dir, 4096, "%s/opencl-test-cache", tsr_test_builddir());
  mkdir(dir, 0755);
  setenv("XDG_CACHE_HOME", dir, 1);
  return dir;
}

#endif
