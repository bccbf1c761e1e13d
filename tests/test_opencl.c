/* The OpenCL plugin (devices/opencl) through the public API: results against the CPU device
 * (a small CNN; depthwise and transposed convolutions with the typed ops after them), the fp16
 * rule and tolerance, several threads on one session, the program-binary cache, a machine with
 * no OpenCL platform and a kernel build that fails. The plugin is loaded by path from the build
 * folder; when it was not built, or the machine has no OpenCL device, the tests that need one
 * pass vacuously (they say so on stderr). Check forks each test, so environment variables set
 * here stay in that test. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "opencl_test_util.h"
#include "model_builder.h"

/* PoCL (with the LLVM inside it) and the ICD loader keep allocations until the process ends;
 * LeakSanitizer reads these suppressions from the test itself, so that only leaks through
 * those libraries are ignored (libstdc++ too: Tessera is C, so a stack through operator new
 * is PoCL's C++) (devices/opencl/lsan.supp holds the same list for other
 * programs). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:libpocl.so\nleak:libOpenCL.so\nleak:libLLVM\nleak:libclang-cpp\n"
         "leak:libstdc++.so\n";
}

/* x[2,3,8,8] -> Conv(4x3x3x3, pads 1, bias) -> MaxPool 2x2 -> Relu -> Flatten
 *            -> Gemm(64 -> 5, transB) -> Softmax. The Relu follows the MaxPool (the two
 * commute) so that the graph passes cannot fuse it into the Conv: a fused Conv carries
 * "tessera.activation", which this plugin refuses (PLUGINS.md P-22), and the strict
 * sessions here need every node on OpenCL. */
static tsr_model *cnn_model(tsr_runtime *rt) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 3, 8, 8}, wd[] = {4, 3, 3, 3}, bd[] = {4}, fd[] = {5, 64}, fbd[] = {5};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  float w[108], b[4], fw[320], fb[5];
  for (int i = 0; i < 108; i++) w[i] = sinf((float)i) * 0.3f;
  for (int i = 0; i < 4; i++) b[i] = 0.1f * (float)i - 0.1f;
  for (int i = 0; i < 320; i++) fw[i] = cosf((float)i * 0.7f) * 0.2f;
  for (int i = 0; i < 5; i++) fb[i] = 0.05f * (float)i;
  mb_init_f32(m, "w", 4, wd, w);
  mb_init_f32(m, "b", 1, bd, b);
  mb_init_f32(m, "fw", 2, fd, fw);
  mb_init_f32(m, "fb", 1, fbd, fb);
  mb_node(m, "Conv", "conv", "x,w,b", "c");
  int64_t pads[] = {1, 1, 1, 1}, k2[] = {2, 2};
  mb_attr_ints(m, "pads", 4, pads);
  mb_node(m, "MaxPool", "pool", "c", "p");
  mb_attr_ints(m, "kernel_shape", 2, k2);
  mb_attr_ints(m, "strides", 2, k2);
  mb_node(m, "Relu", "relu", "p", "r");
  mb_node(m, "Flatten", "flat", "r", "f");
  mb_node(m, "Gemm", "fc", "f,fw,fb", "g");
  mb_attr_int(m, "transB", 1);
  mb_node(m, "Softmax", "softmax", "g", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return tsr_test_load_built(rt, m);
}

static tsr_tensor *cnn_input(tsr_runtime *rt) {
  int64_t xd[] = {2, 3, 8, 8};
  tsr_tensor *x = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 4, xd, &x));
  float *p = tsr_tensor_data(x);
  for (int i = 0; i < 384; i++) p[i] = sinf((float)i * 0.37f);
  return x;
}

static tsr_tensor *run_prec(tsr_runtime *rt, tsr_model *model, const char *devices, int strict,
                            uint32_t precisions, tsr_tensor *x) {
  tsr_session_options so = {sizeof so};
  so.devices = devices;
  so.strict = strict;
  so.precisions = precisions;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {x};
  tsr_tensor *y = NULL;
  ck_assert_ok(tsr_session_run(s, NULL, 1, names, ins, 1, NULL, &y));
  tsr_session_destroy(s);
  return y;
}

static tsr_tensor *run_on(tsr_runtime *rt, tsr_model *model, const char *devices, int strict,
                          tsr_tensor *x) {
  return run_prec(rt, model, devices, strict, 0, x);
}

static void assert_close(tsr_tensor *a, tsr_tensor *b) {
  ck_assert_uint_eq(tsr_tensor_element_count(a), tsr_tensor_element_count(b));
  const float *pa = tsr_tensor_data(a), *pb = tsr_tensor_data(b);
  for (size_t i = 0; i < tsr_tensor_element_count(a); i++)
    ck_assert_msg(fabsf(pa[i] - pb[i]) <= 1e-5f + 1e-4f * fabsf(pb[i]),
                  "element %zu: %g vs %g", i, (double)pa[i], (double)pb[i]);
}

/* Runs model with the same inputs in a strict CPU session and a strict OpenCL session and
 * checks that the n_out outputs named `outs` (at most 4) agree. */
static void expect_opencl_matches_cpu(tsr_runtime *rt, tsr_model *model, size_t n_in,
                                      const char *const *names, const tsr_tensor *const *ins,
                                      size_t n_out, const char *const *outs) {
  tsr_tensor *got[4], *want[4];
  ck_assert_uint_le(n_out, 4);
  for (int dev = 0; dev < 2; dev++) {
    tsr_session_options so = {sizeof so};
    so.devices = dev ? "opencl" : "cpu";
    so.strict = 1;
    tsr_session *s = NULL;
    ck_assert_ok(tsr_session_create(rt, model, &so, &s));
    ck_assert_ok(tsr_session_run(s, NULL, n_in, names, ins, n_out, outs, dev ? got : want));
    tsr_session_destroy(s);
  }
  for (size_t i = 0; i < n_out; i++) {
    assert_close(got[i], want[i]);
    tsr_tensor_destroy(got[i]);
    tsr_tensor_destroy(want[i]);
  }
}

/* Keeps the test's cache out of the user's ~/.cache. */
static char *private_cache(void) {
  char *dir = tsr_test_tmpdir();
  setenv("XDG_CACHE_HOME", dir, 1);
  return dir;
}

START_TEST(matches_cpu_and_caches_the_program) {
  char *cache = private_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  tsr_device_info di = {sizeof di};
  for (size_t i = 0; i < tsr_runtime_device_count(rt); i++)
    if (!tsr_runtime_device_info(rt, i, &di) && !strcmp(di.plugin, "opencl")) break;
  ck_assert(!strncmp(di.id, "opencl", 6));
  ck_assert(di.name && *di.name);
  tsr_model *model = cnn_model(rt);
  tsr_tensor *x = cnn_input(rt);
  tsr_tensor *want = run_on(rt, model, "cpu", 1, x);
  tsr_tensor *got = run_on(rt, model, "opencl", 1, x);
  assert_close(got, want);
  /* Each node's note names the kernels it launches and the precision (node_note). */
  tsr_session_options so = {sizeof so};
  so.devices = "opencl";
  so.strict = 1;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  size_t launches = 0;
  for (size_t i = 0; i < tsr_plan_node_count(plan); i++) {
    tsr_plan_node_info ni = {sizeof ni};
    ck_assert_ok(tsr_plan_get_node(plan, i, &ni));
    if (strncmp(ni.device, "opencl", 6) != 0)
      continue;
    ck_assert_msg(strstr(ni.kernel, "(float32)") != NULL, "node %s: note '%s'", ni.name, ni.kernel);
    launches += strstr(ni.kernel, "_f32") != NULL;
  }
  ck_assert_uint_ge(launches, 1);
  tsr_plan_destroy(plan);
  tsr_session_destroy(s);
  /* A run of launches of one kernel is written once, with its count: Concat copies each of its
   * three inputs with one launch. */
  mb_model *cm = mb_new(13);
  const int64_t cd[2] = {2, 3};
  mb_input(cm, "a", TSR_DTYPE_FLOAT32, 2, cd);
  mb_input(cm, "b", TSR_DTYPE_FLOAT32, 2, cd);
  mb_input(cm, "c", TSR_DTYPE_FLOAT32, 2, cd);
  mb_node(cm, "Concat", "cat", "a,b,c", "y");
  mb_attr_int(cm, "axis", 1);
  mb_output(cm, "y", TSR_DTYPE_FLOAT32);
  tsr_model *cat = tsr_test_load_built(rt, cm);
  ck_assert_ok(tsr_session_create(rt, cat, &so, &s));
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  tsr_plan_node_info ci = {sizeof ci};
  ck_assert_ok(tsr_plan_get_node(plan, 0, &ci));
  ck_assert_msg(strstr(ci.kernel, " x3 (float32)") && !strchr(ci.kernel, ','), "note '%s'",
                ci.kernel);
  tsr_plan_destroy(plan);
  tsr_session_destroy(s);
  tsr_model_destroy(cat);
  /* The program binary went to $XDG_CACHE_HOME/tessera/opencl. */
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/tessera/opencl", cache);
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "no cache folder %s", dir);
  int bins = 0;
  for (struct dirent *e; (e = readdir(d));) bins += strstr(e->d_name, ".bin") != NULL;
  closedir(d);
  ck_assert_int_ge(bins, 1);
  /* A second runtime builds from the cached binary and gives the same result. */
  tsr_tensor *again = run_on(rt, model, "opencl", 1, x);
  assert_close(again, want);
  tsr_tensor_destroy(again);
  tsr_tensor_destroy(got);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

/* x[2,6,9,7] -> depthwise Conv 3x3 stride 2 (the dwconv2d kernel) -> ConvTranspose (groups,
 * stride 2, pads, output_padding) -> Where(c > 0, c, 0.1 c) -> ArgMax over channels, Cast to
 * float, and CumSum along W: every node on OpenCL, every output against the CPU device. */
static tsr_model *conv_ops_model(tsr_runtime *rt) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 6, 9, 7}, wd[] = {6, 1, 3, 3}, bd[] = {6}, td[] = {6, 2, 3, 3};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  float w[54], b[6], t[108], bt[6], k = 0.1f, zero = 0.0f;
  for (int i = 0; i < 54; i++) w[i] = sinf((float)i * 1.3f) * 0.4f;
  for (int i = 0; i < 6; i++) b[i] = 0.05f * (float)i - 0.1f;
  for (int i = 0; i < 108; i++) t[i] = cosf((float)i * 0.9f) * 0.3f;
  for (int i = 0; i < 6; i++) bt[i] = 0.02f * (float)i;
  int64_t axis = 3;
  mb_init_f32(m, "w", 4, wd, w);
  mb_init_f32(m, "b", 1, bd, b);
  mb_init_f32(m, "t", 4, td, t);
  mb_init_f32(m, "bt", 1, bd, bt);
  mb_init_f32(m, "k", 0, NULL, &k);
  mb_init_f32(m, "zero", 0, NULL, &zero);
  mb_init_i64(m, "axis", 0, NULL, &axis);
  int64_t s2[] = {2, 2}, p1[] = {1, 1, 1, 1}, op[] = {1, 0};
  mb_node(m, "Conv", "dw", "x,w,b", "a");
  mb_attr_int(m, "group", 6);
  mb_attr_ints(m, "strides", 2, s2);
  mb_attr_ints(m, "pads", 4, p1);
  mb_node(m, "ConvTranspose", "up", "a,t,bt", "c");
  mb_attr_int(m, "group", 3);
  mb_attr_ints(m, "strides", 2, s2);
  mb_attr_ints(m, "pads", 4, p1);
  mb_attr_ints(m, "output_padding", 2, op);
  mb_node(m, "Greater", "pos", "c,zero", "g");
  mb_node(m, "Mul", "leak", "c,k", "l");
  mb_node(m, "Where", "select", "g,c,l", "d");
  mb_node(m, "ArgMax", "arg", "d", "am");
  mb_attr_int(m, "axis", 1);
  mb_attr_int(m, "keepdims", 0);
  mb_node(m, "Cast", "tofloat", "am", "e");
  mb_attr_int(m, "to", TSR_DTYPE_FLOAT32);
  mb_node(m, "CumSum", "cum", "d,axis", "cs");
  mb_output(m, "d", TSR_DTYPE_FLOAT32);
  mb_output(m, "e", TSR_DTYPE_FLOAT32);
  mb_output(m, "cs", TSR_DTYPE_FLOAT32);
  return tsr_test_load_built(rt, m);
}

START_TEST(depthwise_transposed_and_typed_ops_match_cpu) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  tsr_model *model = conv_ops_model(rt);
  int64_t xd[] = {2, 6, 9, 7};
  tsr_tensor *x = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 4, xd, &x));
  float *px = tsr_tensor_data(x);
  for (int i = 0; i < 756; i++) px[i] = sinf((float)i * 0.61f) + 0.2f;
  const char *outs[] = {"d", "e", "cs"}, *names[] = {"x"};
  const tsr_tensor *ins[] = {x};
  expect_opencl_matches_cpu(rt, model, 1, names, ins, 3, outs);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

/* ScatterND and ScatterElements into constant data: the plugin uploads the constant for the
 * copy that starts the output. */
START_TEST(scatter_into_constant_data) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  mb_model *m = mb_new(13);
  int64_t ud[] = {2, 5}, dd[] = {4, 5}, id[] = {2, 1}, ed[] = {2, 5};
  mb_input(m, "u", TSR_DTYPE_FLOAT32, 2, ud);
  float data[20];
  for (int i = 0; i < 20; i++) data[i] = (float)i * 0.5f;
  int64_t idx[] = {3, 1}, eidx[] = {0, 1, 2, 3, 0, 3, 3, 1, 1, 2};
  mb_init_f32(m, "data", 2, dd, data);
  mb_init_i64(m, "idx", 2, id, idx);
  mb_init_i64(m, "eidx", 2, ed, eidx);
  mb_node(m, "ScatterND", "nd", "data,idx,u", "a");
  mb_node(m, "ScatterElements", "el", "data,eidx,u", "b");
  mb_output(m, "a", TSR_DTYPE_FLOAT32);
  mb_output(m, "b", TSR_DTYPE_FLOAT32);
  tsr_model *model = tsr_test_load_built(rt, m);
  tsr_tensor *u = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 2, ud, &u));
  float *pu = tsr_tensor_data(u);
  for (int i = 0; i < 10; i++) pu[i] = 100.0f + (float)i;
  const char *outs[] = {"a", "b"}, *names[] = {"u"};
  const tsr_tensor *ins[] = {u};
  expect_opencl_matches_cpu(rt, model, 1, names, ins, 2, outs);
  tsr_tensor_destroy(u);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

/* The largest |a - b| over two tensors of floats, and whether any element differs at all. */
static float max_diff(tsr_tensor *a, tsr_tensor *b, bool *any) {
  const float *pa = tsr_tensor_data(a), *pb = tsr_tensor_data(b);
  float m = 0.0f;
  *any = false;
  for (size_t i = 0; i < tsr_tensor_element_count(a); i++) {
    float d = fabsf(pa[i] - pb[i]);
    m = d > m ? d : m;
    *any |= pa[i] != pb[i];
  }
  return m;
}

/* The fp16 rule (devices/opencl/README.md): a session allowing fp16 runs the fp16 variant on a
 * device with cl_khr_fp16 and float32 elsewhere; TESSERA_OPENCL_FP16=emulate runs the variant's
 * roundings in float on any device, =off keeps float32. The CNN's softmax outputs lie in
 * [0, 1]; the README's bound for its half products (3 * 2^-11 of sum |x w| per dot product,
 * about 0.3 here before the softmax, which does not magnify differences) is well under 2e-3. */
START_TEST(fp16_rule_and_tolerance) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  bool real_fp16 = false;
  for (size_t i = 0; i < tsr_runtime_device_count(rt); i++) {
    tsr_device_info di = {sizeof di};
    if (!tsr_runtime_device_info(rt, i, &di) && !strcmp(di.plugin, "opencl")) {
      real_fp16 = (di.flags & TSR_DEVICE_FLAG_FP16) != 0; /* the device "opencl" names */
      break;
    }
  }
  tsr_model *model = cnn_model(rt);
  tsr_tensor *x = cnn_input(rt);
  uint32_t f16 = TSR_PRECISION_FP32 | TSR_PRECISION_FP16;
  tsr_tensor *f32 = run_prec(rt, model, "opencl", 1, TSR_PRECISION_FP32, x);
  bool any;
  /* Allowing fp16: float32 on a device without cl_khr_fp16 (bit for bit), else half. */
  tsr_tensor *y = run_prec(rt, model, "opencl", 1, f16, x);
  float d = max_diff(y, f32, &any);
  if (real_fp16) {
    ck_assert_msg(d <= 2e-3f, "fp16 differs from fp32 by %g", (double)d);
  } else {
    ck_assert_msg(!any, "no cl_khr_fp16, yet the fp16 session differs from fp32 by %g", (double)d);
    fprintf(stderr, "test_opencl: the OpenCL device has no cl_khr_fp16; half arithmetic is "
                    "checked through its emulation only\n");
  }
  tsr_tensor_destroy(y);
  /* The emulated variant: the same roundings, on any device. */
  setenv("TESSERA_OPENCL_FP16", "emulate", 1);
  y = run_prec(rt, model, "opencl", 1, f16, x);
  d = max_diff(y, f32, &any);
  ck_assert_msg(any, "the emulated fp16 variant gave float32's result exactly");
  ck_assert_msg(d <= 2e-3f, "emulated fp16 differs from fp32 by %g", (double)d);
  tsr_tensor_destroy(y);
  /* A session without fp16 never uses the variant. */
  y = run_prec(rt, model, "opencl", 1, TSR_PRECISION_FP32, x);
  d = max_diff(y, f32, &any);
  ck_assert(!any);
  tsr_tensor_destroy(y);
  /* =off keeps float32 even when fp16 is allowed. */
  setenv("TESSERA_OPENCL_FP16", "off", 1);
  y = run_prec(rt, model, "opencl", 1, f16, x);
  d = max_diff(y, f32, &any);
  ck_assert(!any);
  tsr_tensor_destroy(y);
  tsr_tensor_destroy(f32);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

typedef struct worker {
  tsr_session *s;
  tsr_tensor *x, *want;
  int failures;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {w->x};
  for (int i = 0; i < 10; i++) {
    tsr_tensor *y = NULL;
    tsr_status st = tsr_session_run(w->s, NULL, 1, names, ins, 1, NULL, &y);
    if (st) {
      tsr_status_free(st);
      w->failures++;
      continue;
    }
    const float *a = tsr_tensor_data(y), *b = tsr_tensor_data(w->want);
    for (size_t k = 0; k < tsr_tensor_element_count(y); k++)
      if (fabsf(a[k] - b[k]) > 1e-5f + 1e-4f * fabsf(b[k])) {
        w->failures++;
        break;
      }
    tsr_tensor_destroy(y);
  }
  return NULL;
}

START_TEST(several_threads_on_one_session) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  tsr_model *model = cnn_model(rt);
  tsr_tensor *x = cnn_input(rt);
  tsr_tensor *want = run_on(rt, model, "cpu", 1, x);
  tsr_session_options so = {sizeof so};
  so.devices = "opencl";
  so.strict = 1;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){s, x, want, 0};
    ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(w[i].failures, 0);
  }
  tsr_session_destroy(s);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

START_TEST(no_platform_loads_with_no_devices) {
  /* The ICD loader reads its vendor folder from OCL_ICD_VENDORS; an empty one means no
   * platform at all. */
  char *empty = tsr_test_tmpdir();
  setenv("OCL_ICD_VENDORS", empty, 1);
  /* OCL_ICD_FILENAMES names drivers to load whatever the folder holds (NVIDIA's containers
   * set it), so it goes too. */
  unsetenv("OCL_ICD_FILENAMES");
  tsr_runtime *rt = ocl_test_runtime("test_opencl");
  if (!rt) goto out;
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 0);
  for (size_t i = 0; i < tsr_runtime_device_count(rt); i++) {
    tsr_device_info di = {sizeof di};
    ck_assert_ok(tsr_runtime_device_info(rt, i, &di));
    ck_assert_str_ne(di.plugin, "opencl");
  }
  /* The runtime still runs models on the CPU, and asking for OpenCL says it is not there. */
  tsr_model *model = cnn_model(rt);
  tsr_tensor *x = cnn_input(rt);
  tsr_tensor *y = run_on(rt, model, NULL, 0, x);
  ck_assert_uint_eq(tsr_tensor_element_count(y), 10);
  tsr_session_options so = {sizeof so};
  so.devices = "opencl";
  so.strict = 1;
  tsr_session *s = NULL;
  tsr_test_expect_error(tsr_session_create(rt, model, &so, &s), TSR_STATUS_NOT_FOUND,
                        "not available");
  tsr_tensor_destroy(y);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(empty);
}
END_TEST

START_TEST(failing_build_reports_the_log) {
  char *cache = private_cache();
  /* An extra build option that breaks every kernel; the plugin reads it at build time. */
  setenv("TESSERA_OPENCL_BUILD_OPTIONS", "-Dfloat=no_such_type", 1);
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  tsr_model *model = cnn_model(rt);
  tsr_session_options so = {sizeof so};
  so.devices = "opencl";
  so.strict = 1;
  tsr_session *s = NULL;
  tsr_status st = tsr_session_create(rt, model, &so, &s);
  ck_assert_ptr_nonnull(st);
  const char *msg = tsr_status_message(st);
  ck_assert_msg(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") && strstr(msg, "build log") &&
                    strstr(msg, "no_such_type"),
                "unexpected message: %s", msg);
  tsr_status_free(st);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

/* y = Relu(x) for x[N, 1024]: its arena grows with N. */
static tsr_model *relu_model(tsr_runtime *rt) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {-1, 1024};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  mb_node(m, "Relu", "relu", "x", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return tsr_test_load_built(rt, m);
}

static tsr_status run_relu(tsr_session *s, tsr_runtime *rt, int64_t n) {
  int64_t xd[] = {n, 1024};
  tsr_tensor *x = NULL, *y = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 2, xd, &x));
  float *p = tsr_tensor_data(x);
  for (int64_t i = 0; i < n * 1024; i++) p[i] = (float)(i % 7) - 3.0f;
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {x};
  tsr_status st = tsr_session_run(s, NULL, 1, names, ins, 1, NULL, &y);
  if (!st) {
    const float *q = tsr_tensor_data(y);
    for (int64_t i = 0; i < n * 1024; i++) ck_assert_float_eq(q[i], p[i] > 0 ? p[i] : 0.0f);
  }
  tsr_tensor_destroy(y);
  tsr_tensor_destroy(x);
  return st;
}

/* A device that runs out of memory in the middle of a session: the first shape fits, a larger
 * one's plan cannot get its buffers. The run fails naming the device's out-of-memory, and the
 * session (at the old shape), new sessions and the runtime go on working. */
START_TEST(out_of_memory_mid_session) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  setenv("TESSERA_OPENCL_MEMORY_LIMIT", "65536", 1);
  tsr_model *model = relu_model(rt);
  tsr_session_options so = {sizeof so};
  so.devices = "opencl";
  so.strict = 1;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  ck_assert_ok(run_relu(s, rt, 2));  /* 8 KiB in, 8 KiB out */
  tsr_test_expect_error(run_relu(s, rt, 64), TSR_STATUS_OUT_OF_MEMORY,
                        "CL_MEM_OBJECT_ALLOCATION_FAILURE");
  ck_assert_ok(run_relu(s, rt, 2));
  ck_assert_ok(run_relu(s, rt, 3));
  unsetenv("TESSERA_OPENCL_MEMORY_LIMIT");
  ck_assert_ok(run_relu(s, rt, 64));
  tsr_session_destroy(s);
  s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  ck_assert_ok(run_relu(s, rt, 64));
  tsr_session_destroy(s);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

/* Valid indices for a [4, 5] tensor, a quarter of them negative; for the scatters distinct
 * where they must be (ScatterElements: a permutation of the rows in each column). */
static void good_indices(int64_t *iv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t r = (i / 5 + i % 5) % 4;
    iv[i] = (int64_t)r - (r % 2 ? 4 : 0);
  }
}

/* Indices that only the device sees (a graph input): Gather, GatherElements, GatherND,
 * ScatterElements and ScatterND with an index out of range fail the run with a status naming
 * the node, as on the CPU; in range, the same session runs and matches the CPU. */
START_TEST(index_out_of_range_fails_the_run) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = ocl_test_start("test_opencl");
  if (!rt) goto out;
  static const struct {
    const char *op, *name;
    int64_t idx_rank, idx_dims[2], bad_at;
  } cases[] = {
      {"Gather", "g", 1, {3, 0}, 1},
      {"GatherElements", "ge", 2, {4, 5}, 7},
      {"GatherND", "gn", 2, {2, 1}, 1},
      {"ScatterElements", "se", 2, {4, 5}, 11},
      {"ScatterND", "sn", 2, {2, 1}, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    mb_model *m = mb_new(13);
    int64_t dd[] = {4, 5};
    mb_input(m, "data", TSR_DTYPE_FLOAT32, 2, dd);
    mb_input(m, "idx", TSR_DTYPE_INT64, (size_t)cases[c].idx_rank, cases[c].idx_dims);
    bool scatter = !strncmp(cases[c].op, "Scatter", 7), nd = !strcmp(cases[c].op, "ScatterND");
    int64_t ud[] = {2, 5};
    if (scatter)
      mb_input(m, "u", TSR_DTYPE_FLOAT32, 2, nd ? ud : dd);
    mb_node(m, cases[c].op, cases[c].name, scatter ? "data,idx,u" : "data,idx", "y");
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    tsr_model *model = tsr_test_load_built(rt, m);
    tsr_tensor *data = NULL, *idx = NULL, *u = NULL;
    ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 2, dd, &data));
    for (int i = 0; i < 20; i++) ((float *)tsr_tensor_data(data))[i] = (float)i;
    ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_INT64, (size_t)cases[c].idx_rank,
                                   cases[c].idx_dims, &idx));
    ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 2, nd ? ud : dd, &u));
    for (size_t i = 0; i < tsr_tensor_element_count(u); i++)
      ((float *)tsr_tensor_data(u))[i] = 100.0f + (float)i;
    int64_t *iv = tsr_tensor_data(idx);
    size_t ni = tsr_tensor_element_count(idx);
    const char *names[] = {"data", "idx", "u"};
    const tsr_tensor *ins[] = {data, idx, u};
    size_t n_in = scatter ? 3 : 2;
    tsr_tensor *got = NULL, *want = NULL;
    for (int dev = 0; dev < 2; dev++) {
      tsr_session_options so = {sizeof so};
      so.devices = dev ? "opencl" : "cpu";
      so.strict = 1;
      tsr_session *s = NULL;
      ck_assert_ok(tsr_session_create(rt, model, &so, &s));
      /* In range (negative ones count from the end): runs, and OpenCL matches the CPU. */
      good_indices(iv, ni);
      ck_assert_ok(tsr_session_run(s, NULL, n_in, names, ins, 1, NULL, dev ? &got : &want));
      /* One index past the end: the run fails naming the node; the next good run works. */
      iv[cases[c].bad_at] = 5; /* axis 0 has 4 rows */
      tsr_tensor *bad = NULL;
      char want_msg[64];
      snprintf(want_msg, sizeof want_msg, "node '%s'", cases[c].name);
      tsr_test_expect_error(tsr_session_run(s, NULL, n_in, names, ins, 1, NULL, &bad),
                            TSR_STATUS_INVALID_ARGUMENT, want_msg);
      ck_assert_ptr_null(bad);
      good_indices(iv, ni);
      tsr_tensor *again = NULL;
      ck_assert_ok(tsr_session_run(s, NULL, n_in, names, ins, 1, NULL, &again));
      tsr_tensor_destroy(again);
      tsr_session_destroy(s);
    }
    assert_close(got, want);
    tsr_tensor_destroy(got);
    tsr_tensor_destroy(want);
    tsr_tensor_destroy(data);
    tsr_tensor_destroy(idx);
    tsr_tensor_destroy(u);
    tsr_model_destroy(model);
  }
out:
  tsr_runtime_destroy(rt);
  free(cache);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("opencl");
  TCase *tc = tcase_create("opencl");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, matches_cpu_and_caches_the_program);
  tcase_add_test(tc, depthwise_transposed_and_typed_ops_match_cpu);
  tcase_add_test(tc, scatter_into_constant_data);
  tcase_add_test(tc, fp16_rule_and_tolerance);
  tcase_add_test(tc, several_threads_on_one_session);
  tcase_add_test(tc, no_platform_loads_with_no_devices);
  tcase_add_test(tc, failing_build_reports_the_log);
  tcase_add_test(tc, out_of_memory_mid_session);
  tcase_add_test(tc, index_out_of_range_fails_the_run);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(suite()) ? 1 : 0; }
