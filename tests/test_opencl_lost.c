/* The OpenCL plugin when its device disappears while a session holds it (a GPU reset, a driver
 * unloaded, an eGPU unplugged): runs fail with a status naming the OpenCL call and the driver's
 * error code, nothing crashes, hangs or leaks, the session can be released, CPU sessions go on,
 * new OpenCL sessions fail clearly while the device is gone and work once it is back.
 *
 * The device is lost on purpose by interposing the OpenCL entry points the plugin calls. The
 * plugin is dlopen()ed RTLD_LOCAL and binds its cl* symbols at load time through the global
 * scope first, where this executable (linked with export_dynamic) comes before libOpenCL.so.1;
 * each wrapper below forwards to the ICD loader's own function unless the simulated device is
 * gone. Nothing in the plugin knows about the test, and LD_PRELOAD (which AddressSanitizer
 * does not like) is not needed. The test checks that the interposition took effect, so a
 * linker that bypasses it fails the test instead of passing it vacuously.
 *
 * Two kinds of loss are simulated:
 * - a device that goes away and comes back with everything intact (a driver that refuses
 *   work for a while: CL_DEVICE_NOT_AVAILABLE, CL_OUT_OF_RESOURCES, CL_INVALID_COMMAND_QUEUE);
 * - a reset that kills every context that existed when it happened: calls on those contexts
 *   and their queues, buffers and programs keep failing after the device is back, and only
 *   a new context works (what GPUs do after a reset or a fatal fault).
 * The failure may start at any call: a sweep makes the Nth device call of a run fail for
 * every N, as SQLite's tests fail the Nth allocation. Check forks each test, so the
 * simulation's state stays in that test. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "opencl_test_util.h"
#include "model_builder.h"

/* PoCL and the ICD loader keep allocations until the process ends (see test_opencl.c). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:libpocl.so\nleak:libOpenCL.so\nleak:libLLVM\nleak:libclang-cpp\n"
         "leak:libstdc++.so\n";
}

/* ---- The simulated loss ----------------------------------------------------------------- */

#define SIM_MAX_CONTEXTS 64

static struct {
  bool lost;          /* the device is gone: every device call fails with `code` */
  cl_int code;        /* what failing calls return */
  long ok_calls;      /* >= 0: this many more device calls succeed, then the device is lost */
  bool kill_contexts; /* a loss kills every context that exists (a reset) */
  long intercepted;   /* calls that went through a wrapper (the interposition works) */
  long failed;        /* calls a wrapper failed */
  cl_context made[SIM_MAX_CONTEXTS];
  int n_made;
  cl_context dead[SIM_MAX_CONTEXTS];
  int n_dead;
  void (*on_finish)(void); /* called once, at the next clFinish */
  long live[5];            /* handles the plugin holds, per kind below */
} sim = {.ok_calls = -1, .code = CL_DEVICE_NOT_AVAILABLE};

/* The ICD loader's own entry point: the plugin has already loaded libOpenCL.so.1, so this
 * dlopen finds it, and dlsym on its handle skips the wrappers in this executable. */
static void *real_symbol(const char *name) {
  static void *lib;
  if (!lib) lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  void *p = lib ? dlsym(lib, name) : NULL;
  if (!p) {
    fprintf(stderr, "test_opencl_lost: cannot find the real %s\n", name);
    abort(); /* test code: nothing sensible can follow */
  }
  return p;
}

#define REAL(fn)                                                                                \
  static __typeof__(fn) *real_##fn;                                                             \
  if (!real_##fn) real_##fn = (__typeof__(fn) *)real_symbol(#fn);                               \
  sim.intercepted++

/* The plugin's OpenCL handles are counted (creates and retains less releases), so that a leak
 * of one under failure shows even though LeakSanitizer must ignore what PoCL allocates. */
enum { LIVE_CONTEXT, LIVE_QUEUE, LIVE_PROGRAM, LIVE_KERNEL, LIVE_MEM };
static const char *const live_names[] = {"contexts", "queues", "programs", "kernels", "buffers"};

static void *count_live(void *handle, int kind) {
  if (handle) sim.live[kind]++;
  return handle;
}

static void expect_no_live_handles(void) {
  for (int k = 0; k < 5; k++)
    ck_assert_msg(sim.live[k] == 0, "the plugin still holds %ld OpenCL %s", sim.live[k],
                  live_names[k]);
}

static bool is_dead(cl_context ctx) {
  for (int i = 0; ctx && i < sim.n_dead; i++)
    if (sim.dead[i] == ctx) return true;
  return false;
}

static void sim_lose(void) {
  sim.lost = true;
  sim.ok_calls = -1;
  if (!sim.kill_contexts) return;
  for (int i = 0; i < sim.n_made && sim.n_dead < SIM_MAX_CONTEXTS; i++)
    if (!is_dead(sim.made[i])) sim.dead[sim.n_dead++] = sim.made[i];
}

/* The device comes back. Contexts a reset killed stay dead. */
static void sim_return(void) {
  sim.lost = false;
  sim.ok_calls = -1;
}

/* Lose the device after `ok` more device calls have succeeded (0: at the next one). */
static void sim_arm(long ok, cl_int code, bool kill_contexts) {
  sim.code = code;
  sim.kill_contexts = kill_contexts;
  sim.ok_calls = ok;
}

/* Whether a call on an object of context ctx fails; `work` calls (enqueues, clFinish) count
 * towards an armed loss. */
static cl_int sim_check(cl_context ctx, bool work) {
  if (work && sim.ok_calls == 0) sim_lose();
  if (work && sim.ok_calls > 0) sim.ok_calls--;
  if (sim.lost || is_dead(ctx)) {
    sim.failed++;
    return sim.code;
  }
  return CL_SUCCESS;
}

static cl_context queue_context(cl_command_queue q) {
  REAL(clGetCommandQueueInfo);
  cl_context ctx = NULL;
  real_clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof ctx, &ctx, NULL);
  return ctx;
}

static cl_context program_context(cl_program p) {
  REAL(clGetProgramInfo);
  cl_context ctx = NULL;
  real_clGetProgramInfo(p, CL_PROGRAM_CONTEXT, sizeof ctx, &ctx, NULL);
  return ctx;
}

/* ---- The wrappers: every call of the plugin that needs the device ----------------------- */

/* A platform that disappears: a runtime created while the device is gone finds none. */
CL_API_ENTRY cl_int CL_API_CALL clGetPlatformIDs(cl_uint num_entries, cl_platform_id *platforms,
                                                 cl_uint *num_platforms) {
  REAL(clGetPlatformIDs);
  if (sim.lost) {
    if (num_platforms) *num_platforms = 0;
    return -1001; /* CL_PLATFORM_NOT_FOUND_KHR */
  }
  return real_clGetPlatformIDs(num_entries, platforms, num_platforms);
}

CL_API_ENTRY cl_context CL_API_CALL clCreateContext(
    const cl_context_properties *properties, cl_uint num_devices, const cl_device_id *devices,
    void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *), void *user_data,
    cl_int *errcode_ret) {
  REAL(clCreateContext);
  cl_int e = sim_check(NULL, false);
  if (e) {
    if (errcode_ret) *errcode_ret = e;
    return NULL;
  }
  cl_context ctx = count_live(
      real_clCreateContext(properties, num_devices, devices, notify, user_data, errcode_ret),
      LIVE_CONTEXT);
  if (ctx) {
    /* A new context may reuse a dead one's address. */
    for (int i = 0; i < sim.n_dead; i++)
      if (sim.dead[i] == ctx) sim.dead[i--] = sim.dead[--sim.n_dead];
    if (sim.n_made < SIM_MAX_CONTEXTS) sim.made[sim.n_made++] = ctx;
  }
  return ctx;
}

CL_API_ENTRY cl_command_queue CL_API_CALL clCreateCommandQueue(
    cl_context context, cl_device_id device, cl_command_queue_properties properties,
    cl_int *errcode_ret) {
  REAL(clCreateCommandQueue);
  cl_int e = sim_check(context, false);
  if (e) {
    if (errcode_ret) *errcode_ret = e;
    return NULL;
  }
  return count_live(real_clCreateCommandQueue(context, device, properties, errcode_ret),
                    LIVE_QUEUE);
}

CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags,
                                               size_t size, void *host_ptr,
                                               cl_int *errcode_ret) {
  REAL(clCreateBuffer);
  cl_int e = sim_check(context, false);
  if (e) {
    if (errcode_ret) *errcode_ret = e;
    return NULL;
  }
  return count_live(real_clCreateBuffer(context, flags, size, host_ptr, errcode_ret), LIVE_MEM);
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithSource(cl_context context, cl_uint count,
                                                              const char **strings,
                                                              const size_t *lengths,
                                                              cl_int *errcode_ret) {
  REAL(clCreateProgramWithSource);
  cl_int e = sim_check(context, false);
  if (e) {
    if (errcode_ret) *errcode_ret = e;
    return NULL;
  }
  return count_live(real_clCreateProgramWithSource(context, count, strings, lengths, errcode_ret),
                    LIVE_PROGRAM);
}

CL_API_ENTRY cl_program CL_API_CALL clCreateProgramWithBinary(
    cl_context context, cl_uint num_devices, const cl_device_id *device_list,
    const size_t *lengths, const unsigned char **binaries, cl_int *binary_status,
    cl_int *errcode_ret) {
  REAL(clCreateProgramWithBinary);
  cl_int e = sim_check(context, false);
  if (e) {
    if (errcode_ret) *errcode_ret = e;
    return NULL;
  }
  return count_live(real_clCreateProgramWithBinary(context, num_devices, device_list, lengths,
                                                   binaries, binary_status, errcode_ret),
                    LIVE_PROGRAM);
}

CL_API_ENTRY cl_int CL_API_CALL clBuildProgram(cl_program program, cl_uint num_devices,
                                               const cl_device_id *device_list,
                                               const char *options,
                                               void(CL_CALLBACK *notify)(cl_program, void *),
                                               void *user_data) {
  REAL(clBuildProgram);
  cl_int e = sim_check(program_context(program), false);
  if (e) return e;
  return real_clBuildProgram(program, num_devices, device_list, options, notify, user_data);
}

CL_API_ENTRY cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *kernel_name,
                                                  cl_int *errcode_ret) {
  REAL(clCreateKernel);
  cl_int e = sim_check(program_context(program), false);
  if (e) {
    if (errcode_ret) *errcode_ret = e;
    return NULL;
  }
  return count_live(real_clCreateKernel(program, kernel_name, errcode_ret), LIVE_KERNEL);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue queue, cl_mem buffer,
                                                     cl_bool blocking, size_t offset, size_t size,
                                                     const void *ptr, cl_uint n_wait,
                                                     const cl_event *wait, cl_event *event) {
  REAL(clEnqueueWriteBuffer);
  cl_int e = sim_check(queue_context(queue), true);
  if (e) return e;
  return real_clEnqueueWriteBuffer(queue, buffer, blocking, offset, size, ptr, n_wait, wait,
                                   event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue queue, cl_mem buffer,
                                                    cl_bool blocking, size_t offset, size_t size,
                                                    void *ptr, cl_uint n_wait,
                                                    const cl_event *wait, cl_event *event) {
  REAL(clEnqueueReadBuffer);
  cl_int e = sim_check(queue_context(queue), true);
  if (e) return e;
  return real_clEnqueueReadBuffer(queue, buffer, blocking, offset, size, ptr, n_wait, wait,
                                  event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueCopyBuffer(cl_command_queue queue, cl_mem src,
                                                    cl_mem dst, size_t src_offset,
                                                    size_t dst_offset, size_t size,
                                                    cl_uint n_wait, const cl_event *wait,
                                                    cl_event *event) {
  REAL(clEnqueueCopyBuffer);
  cl_int e = sim_check(queue_context(queue), true);
  if (e) return e;
  return real_clEnqueueCopyBuffer(queue, src, dst, src_offset, dst_offset, size, n_wait, wait,
                                  event);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel,
                                                       cl_uint dims, const size_t *offset,
                                                       const size_t *global,
                                                       const size_t *local, cl_uint n_wait,
                                                       const cl_event *wait, cl_event *event) {
  REAL(clEnqueueNDRangeKernel);
  cl_int e = sim_check(queue_context(queue), true);
  if (e) return e;
  return real_clEnqueueNDRangeKernel(queue, kernel, dims, offset, global, local, n_wait, wait,
                                     event);
}

CL_API_ENTRY cl_int CL_API_CALL clFinish(cl_command_queue queue) {
  REAL(clFinish);
  void (*f)(void) = sim.on_finish;
  sim.on_finish = NULL;
  if (f) f();
  cl_int e = sim_check(queue_context(queue), true);
  if (e) return e;
  return real_clFinish(queue);
}

#define RETAIN_RELEASE(type, object, kind)                                                      \
  CL_API_ENTRY cl_int CL_API_CALL clRetain##object(type handle) {                              \
    REAL(clRetain##object);                                                                     \
    cl_int e = real_clRetain##object(handle);                                                   \
    if (e == CL_SUCCESS) sim.live[kind]++;                                                      \
    return e;                                                                                   \
  }                                                                                             \
  CL_API_ENTRY cl_int CL_API_CALL clRelease##object(type handle) {                             \
    REAL(clRelease##object);                                                                    \
    cl_int e = real_clRelease##object(handle);                                                  \
    if (e == CL_SUCCESS) sim.live[kind]--;                                                      \
    return e;                                                                                   \
  }
RETAIN_RELEASE(cl_context, Context, LIVE_CONTEXT)
RETAIN_RELEASE(cl_command_queue, CommandQueue, LIVE_QUEUE)
RETAIN_RELEASE(cl_program, Program, LIVE_PROGRAM)
RETAIN_RELEASE(cl_kernel, Kernel, LIVE_KERNEL)
RETAIN_RELEASE(cl_mem, MemObject, LIVE_MEM)

/* ---- Helpers -------------------------------------------------------------------------- */

/* Starts a test: the runtime, or NULL (and a note) when there is no OpenCL device. Also
 * checks that the wrappers are really in the plugin's path. */
static tsr_runtime *start(void) {
  tsr_runtime *rt = ocl_test_start("test_opencl_lost");
  if (rt) ck_assert_msg(sim.intercepted > 0, "the OpenCL wrappers were not interposed");
  return rt;
}

/* x[2,3,3] -> Relu -> Sigmoid -> y, wholly on OpenCL. */
static tsr_model *relu_model(tsr_runtime *rt) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 3, 3};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, xd);
  mb_node(m, "Relu", "relu", "x", "r");
  mb_node(m, "Sigmoid", "sigmoid", "r", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return tsr_test_load_built(rt, m);
}

/* x[2,3,3] -> Relu -> r, If(ReduceSum(r) > 0, Neg(r), Abs(r)) -> Sigmoid -> y. Control flow
 * runs on the host with its values on the CPU (docs/ARCHITECTURE.md), whatever ops OpenCL
 * gains, so "opencl,cpu" gives three partitions: OpenCL, the If on the CPU (its branch a
 * session of its own, on OpenCL), OpenCL again, with copies each way. */
static tsr_model *split_model(tsr_runtime *rt) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 3, 3};
  float zero = 0.0f;
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, xd);
  mb_init_f32(m, "zero", 0, NULL, &zero);
  mb_node(m, "Relu", "relu", "x", "r");
  mb_node(m, "ReduceSum", "total", "r", "t");
  mb_attr_int(m, "keepdims", 0);
  mb_node(m, "Greater", "positive", "t,zero", "c");
  mb_node(m, "If", "branch", "c", "n");
  mb_model *then_b = mb_new(13);
  mb_node(then_b, "Neg", "then_neg", "r", "then_out");
  mb_output(then_b, "then_out", TSR_DTYPE_FLOAT32);
  mb_model *else_b = mb_new(13);
  mb_node(else_b, "Abs", "else_abs", "r", "else_out");
  mb_output(else_b, "else_out", TSR_DTYPE_FLOAT32);
  mb_attr_graph(m, "then_branch", then_b);
  mb_attr_graph(m, "else_branch", else_b);
  mb_node(m, "Sigmoid", "sigmoid", "n", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  tsr_model *model = tsr_test_load_built(rt, m);
  /* Check the split. */
  tsr_session_options so = {sizeof so};
  so.devices = "opencl,cpu";
  tsr_session *s = NULL;
  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  size_t n = tsr_plan_partition_count(plan);
  char devs[256] = "";
  for (size_t k = 0; k < n; k++) {
    tsr_plan_partition_info pi = {sizeof pi};
    ck_assert_ok(tsr_plan_get_partition(plan, k, &pi));
    size_t len = strlen(devs);
    snprintf(devs + len, sizeof devs - len, "%s%s", k ? "," : "", pi.device);
  }
  tsr_plan_destroy(plan);
  tsr_session_destroy(s);
  ck_assert_msg(n == 3 && !strncmp(devs, "opencl", 6) && strstr(devs, ",cpu,opencl"),
                "expected partitions on opencl, cpu, opencl; got %s", devs);
  return model;
}

static tsr_tensor *input(tsr_runtime *rt) {
  int64_t xd[] = {2, 3, 3};
  tsr_tensor *x = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 3, xd, &x));
  float *p = tsr_tensor_data(x);
  for (int i = 0; i < 18; i++) p[i] = sinf((float)i * 0.37f) * 2.0f;
  return x;
}

static tsr_status create(tsr_runtime *rt, tsr_model *model, const char *devices, int strict,
                         tsr_session **out) {
  tsr_session_options so = {sizeof so};
  so.devices = devices;
  so.strict = strict;
  *out = NULL;
  return tsr_session_create(rt, model, &so, out);
}

/* Runs the session on x; on success compares y with `want` (when given) and frees it. */
static tsr_status run(tsr_session *s, tsr_tensor *x, tsr_tensor *want) {
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {x};
  tsr_tensor *y = NULL;
  tsr_status st = tsr_session_run(s, NULL, 1, names, ins, 1, NULL, &y);
  if (st) {
    ck_assert_ptr_null(y);
    return st;
  }
  if (want) {
    ck_assert_uint_eq(tsr_tensor_element_count(y), tsr_tensor_element_count(want));
    const float *a = tsr_tensor_data(y), *b = tsr_tensor_data(want);
    for (size_t i = 0; i < tsr_tensor_element_count(y); i++)
      ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-5f + 1e-4f * fabsf(b[i]), "element %zu: %g vs %g",
                    i, (double)a[i], (double)b[i]);
  }
  tsr_tensor_destroy(y);
  return NULL;
}

static tsr_tensor *run_cpu(tsr_runtime *rt, tsr_model *model, tsr_tensor *x) {
  tsr_session *s = NULL;
  ck_assert_ok(create(rt, model, "cpu", 1, &s));
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {x};
  tsr_tensor *y = NULL;
  ck_assert_ok(tsr_session_run(s, NULL, 1, names, ins, 1, NULL, &y));
  tsr_session_destroy(s);
  return y;
}

static const char *const lost_calls[] = {
    "clEnqueueWriteBuffer", "clEnqueueReadBuffer", "clEnqueueCopyBuffer",
    "clEnqueueNDRangeKernel", "clFinish", "clCreateBuffer", "clCreateCommandQueue",
    "clCreateContext", "clBuildProgram", "clCreateKernel", "clCreateProgramWith"};

/* Asserts that st is a device failure whose message names `code` and one of the OpenCL calls
 * the simulation fails; frees it. */
static void expect_lost(tsr_status st, const char *code) {
  ck_assert_msg(st != NULL, "the call succeeded with the device gone");
  const char *msg = tsr_status_message(st);
  fprintf(stderr, "test_opencl_lost: as expected: %s\n", msg);
  bool names_call = false;
  for (size_t i = 0; i < sizeof lost_calls / sizeof *lost_calls; i++)
    names_call |= strstr(msg, lost_calls[i]) != NULL;
  ck_assert_msg(strstr(msg, code) && names_call && strstr(msg, "failed"),
                "the message does not name the failed call and %s: %s", code, msg);
  /* An allocation failing with CL_OUT_OF_RESOURCES is reported as out of memory. */
  tsr_status_code c = tsr_status_code_of(st);
  ck_assert_msg(c == TSR_STATUS_DEVICE || (c == TSR_STATUS_OUT_OF_MEMORY &&
                                            strstr(msg, "clCreateBuffer")),
                "status code %d for: %s", (int)c, msg);
  tsr_status_free(st);
}

static const cl_int codes[] = {CL_DEVICE_NOT_AVAILABLE, CL_OUT_OF_RESOURCES,
                               CL_INVALID_COMMAND_QUEUE};
static const char *const code_names[] = {"CL_DEVICE_NOT_AVAILABLE", "CL_OUT_OF_RESOURCES",
                                         "CL_INVALID_COMMAND_QUEUE"};

/* ---- Tests ---------------------------------------------------------------------------- */

/* The device fails at the Nth device call of a run, for every N and three error codes, in a
 * session that runs on OpenCL, the CPU (an If, whose branch runs on OpenCL in a session of its
 * own) and OpenCL again, with copies both ways. Each failing run names the call and the code;
 * a CPU session works meanwhile; when the device is back, the same session runs again,
 * correctly. */
START_TEST(lost_at_every_call_of_a_split_run) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = start();
  if (!rt) goto out;
  tsr_model *model = split_model(rt);
  tsr_tensor *x = input(rt);
  tsr_tensor *want = run_cpu(rt, model, x);
  tsr_session *s = NULL;
  ck_assert_ok(create(rt, model, "opencl,cpu", 0, &s));
  ck_assert_ok(run(s, x, want));
  for (size_t c = 0; c < sizeof codes / sizeof *codes; c++) {
    long n = 0;
    for (;; n++) {
      sim_arm(n, codes[c], false);
      long failed = sim.failed;
      tsr_status st = run(s, x, want);
      if (!st) {
        /* The run needed fewer than n + 1 device calls: every position has been tried. */
        ck_assert_int_eq(sim.failed, failed);
        break;
      }
      ck_assert(sim.lost);
      expect_lost(st, code_names[c]);
      tsr_tensor *y = run_cpu(rt, model, x); /* the CPU is unaffected */
      tsr_tensor_destroy(y);
      sim_return();
      ck_assert_ok(run(s, x, want));
    }
    /* At least the input, a kernel and clFinish per OpenCL partition, a copy each way and the
     * output (the If's branch, on OpenCL too, adds its own). */
    ck_assert_int_ge(n, 8);
  }
  sim_return();
  tsr_session_destroy(s);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  expect_no_live_handles();
  free(cache);
}
END_TEST

/* While the device is gone: the running session fails, and is released; new OpenCL sessions
 * fail at creation naming the call and the code, whether or not the CPU is listed after it
 * (a device the host names must work; the CPU takes only nodes that devices refuse); CPU
 * sessions and a new runtime (which finds no OpenCL platform) work. Once it is back, a new
 * OpenCL session in the same runtime runs correctly. */
START_TEST(lost_device_then_back) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = start();
  if (!rt) goto out;
  tsr_model *model = relu_model(rt), *split = split_model(rt);
  tsr_tensor *x = input(rt);
  tsr_tensor *want = run_cpu(rt, model, x), *want_split = run_cpu(rt, split, x);
  tsr_session *s = NULL, *other = NULL;
  ck_assert_ok(create(rt, model, "opencl", 1, &s));
  ck_assert_ok(run(s, x, want));
  ck_assert(sim.live[LIVE_CONTEXT] > 0 && sim.live[LIVE_KERNEL] > 0 && sim.live[LIVE_MEM] > 0);
  sim_arm(0, CL_DEVICE_NOT_AVAILABLE, false);
  expect_lost(run(s, x, want), "CL_DEVICE_NOT_AVAILABLE");
  expect_lost(run(s, x, want), "CL_DEVICE_NOT_AVAILABLE");
  tsr_session_destroy(s);
  s = NULL;
  expect_lost(create(rt, model, "opencl", 1, &s), "CL_DEVICE_NOT_AVAILABLE");
  ck_assert_ptr_null(s);
  expect_lost(create(rt, split, "opencl,cpu", 0, &s), "CL_DEVICE_NOT_AVAILABLE");
  ck_assert_ptr_null(s);
  ck_assert_ok(create(rt, split, "cpu", 1, &other));
  ck_assert_ok(run(other, x, want_split));
  tsr_session_destroy(other);
  other = NULL;
  /* A runtime created now finds no OpenCL platform, runs on the CPU, and says OpenCL is not
   * there. */
  tsr_runtime *rt2 = ocl_test_runtime("test_opencl_lost");
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt2), 0);
  ck_assert(!ocl_test_has_device(rt2));
  tsr_model *model2 = relu_model(rt2);
  tsr_tensor *y = run_cpu(rt2, model2, x);
  tsr_tensor_destroy(y);
  tsr_test_expect_error(create(rt2, model2, "opencl", 1, &other), TSR_STATUS_NOT_FOUND,
                        "not available");
  tsr_model_destroy(model2);
  tsr_runtime_destroy(rt2);
  /* Back. */
  sim_return();
  ck_assert_ok(create(rt, model, "opencl", 1, &s));
  ck_assert_ok(run(s, x, want));
  ck_assert_ok(create(rt, split, "opencl,cpu", 0, &other));
  ck_assert_ok(run(other, x, want_split));
  tsr_session_destroy(other);
  tsr_session_destroy(s);
  tsr_tensor_destroy(want_split);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(split);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  expect_no_live_handles();
  free(cache);
}
END_TEST

/* A reset in the middle of a split run kills the contexts that existed. After the device is
 * back, the old session keeps failing with a clear error (its queues and buffers are gone)
 * and can be released; a new session, in the same runtime, gets a new context and works. */
START_TEST(reset_kills_contexts_new_sessions_recover) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = start();
  if (!rt) goto out;
  tsr_model *split = split_model(rt);
  tsr_tensor *x = input(rt);
  tsr_tensor *want = run_cpu(rt, split, x);
  tsr_session *s = NULL, *s2 = NULL;
  ck_assert_ok(create(rt, split, "opencl,cpu", 0, &s));
  ck_assert_ok(run(s, x, want));
  sim_arm(3, CL_OUT_OF_RESOURCES, true); /* in the middle of the first partition */
  expect_lost(run(s, x, want), "CL_OUT_OF_RESOURCES");
  sim_return();
  ck_assert_int_ge(sim.n_dead, 1);
  expect_lost(run(s, x, want), "CL_OUT_OF_RESOURCES");
  ck_assert_ok(create(rt, split, "opencl,cpu", 0, &s2));
  ck_assert_ok(run(s2, x, want));
  ck_assert_ok(run(s2, x, want));
  expect_lost(run(s, x, want), "CL_OUT_OF_RESOURCES");
  tsr_session_destroy(s);
  ck_assert_ok(run(s2, x, want));
  tsr_session_destroy(s2);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(split);
out:
  tsr_runtime_destroy(rt);
  expect_no_live_handles();
  free(cache);
}
END_TEST

/* A reset while nothing runs: the device's context is dead when it comes back, and the first
 * call on it is a new session's compile, which must not fail for it. */
START_TEST(reset_while_idle_new_session_recovers) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = start();
  if (!rt) goto out;
  tsr_model *model = relu_model(rt);
  tsr_tensor *x = input(rt);
  tsr_tensor *want = run_cpu(rt, model, x);
  tsr_session *s = NULL, *s2 = NULL;
  ck_assert_ok(create(rt, model, "opencl", 1, &s));
  ck_assert_ok(run(s, x, want));
  sim_arm(0, CL_INVALID_COMMAND_QUEUE, true);
  sim_lose();
  sim_return();
  ck_assert_ok(create(rt, model, "opencl", 1, &s2));
  ck_assert_ok(run(s2, x, want));
  expect_lost(run(s, x, want), "CL_INVALID_COMMAND_QUEUE");
  tsr_session_destroy(s);
  ck_assert_ok(run(s2, x, want));
  tsr_session_destroy(s2);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  expect_no_live_handles();
  free(cache);
}
END_TEST

static struct {
  tsr_session *s;
  tsr_tensor *x;
  tsr_status st;
} nested;

static void nested_run(void) { nested.st = run(nested.s, nested.x, NULL); }

/* A failure that was no loss (the device answered CL_DEVICE_NOT_AVAILABLE for a while, its
 * context intact): new sessions get a new context, the old session keeps its own and runs.
 * A second run of the old session started while the first is in flight needs new buffers,
 * which come from the new context: it fails clearly instead of mixing contexts. */
START_TEST(false_alarm_old_session_keeps_its_context) {
  char *cache = ocl_test_shared_cache();
  tsr_runtime *rt = start();
  if (!rt) goto out;
  tsr_model *model = relu_model(rt);
  tsr_tensor *x = input(rt);
  tsr_tensor *want = run_cpu(rt, model, x);
  tsr_session *s = NULL, *s2 = NULL;
  ck_assert_ok(create(rt, model, "opencl", 1, &s));
  ck_assert_ok(run(s, x, want));
  int contexts = sim.n_made;
  sim_arm(0, CL_DEVICE_NOT_AVAILABLE, false);
  expect_lost(run(s, x, want), "CL_DEVICE_NOT_AVAILABLE");
  sim_return();
  ck_assert_ok(create(rt, model, "opencl", 1, &s2));
  ck_assert_int_eq(sim.n_made, contexts + 1);
  ck_assert_ok(run(s2, x, want));
  ck_assert_ok(run(s, x, want));
  nested.s = s;
  nested.x = x;
  sim.on_finish = nested_run; /* from inside the old session's next run */
  ck_assert_ok(run(s, x, want));
  ck_assert_ptr_null(sim.on_finish);
  tsr_test_expect_error(nested.st, TSR_STATUS_DEVICE, "another OpenCL context");
  ck_assert_ok(run(s, x, want));
  tsr_session_destroy(s);
  ck_assert_ok(run(s2, x, want));
  tsr_session_destroy(s2);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
  tsr_model_destroy(model);
out:
  tsr_runtime_destroy(rt);
  expect_no_live_handles();
  free(cache);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("opencl_lost");
  TCase *tc = tcase_create("opencl_lost");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, lost_at_every_call_of_a_split_run);
  tcase_add_test(tc, lost_device_then_back);
  tcase_add_test(tc, reset_kills_contexts_new_sessions_recover);
  tcase_add_test(tc, reset_while_idle_new_session_recovers);
  tcase_add_test(tc, false_alarm_old_session_keeps_its_context);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(suite()) ? 1 : 0; }
