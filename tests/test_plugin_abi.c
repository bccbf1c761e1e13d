/* The plugin ABI from the host's side (scheduler/runtime.c, with placement in the planner):
 * version negotiation and table checks against fake plugins built good, newer, and broken
 * (tests/plugins/fake_plugin.c), discovery through TESSERA_PLUGIN_PATH, placement of nodes on
 * a plugin device with the refusal reasons in the plan, strict mode, and staging copies for a
 * plugin without host_pointer/copy.
 *
 * TSR_TEST_PLUGIN_DIR names the folder with the built modules (set by tests/meson.build). */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/model_builder.h"

/* Mirrors fake_counters in tests/plugins/fake_plugin.c. */
typedef struct fake_counters {
  long inits, shutdowns;
  long allocs, frees, live_buffers;
  long writes, reads, host_pointers, copies;
  long compiles, releases, executes;
} fake_counters;
typedef void (*fake_counters_fn)(fake_counters *out);

static const char *plugin_dir(void) {
  const char *d = getenv("TSR_TEST_PLUGIN_DIR");
  ck_assert_msg(d && *d, "TSR_TEST_PLUGIN_DIR is not set (run through meson test)");
  return d;
}

/* The path of the module for a fake variant, e.g. "fake_staging"; the caller frees it. */
static char *module_path(const char *variant) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s/libtessera_%s.so", plugin_dir(), variant);
  ck_assert_msg(access(buf, R_OK) == 0, "module %s was not built", buf);
  return strdup(buf);
}

/* Holds its own reference to a module, so that its counters outlive the runtime that loaded
 * it, and returns its counter function. */
typedef struct held_module {
  void *handle;
  fake_counters_fn counters;
} held_module;

static held_module hold(const char *variant) {
  char *path = module_path(variant);
  held_module h = {dlopen(path, RTLD_NOW | RTLD_LOCAL), NULL};
  ck_assert_msg(h.handle != NULL, "dlopen %s: %s", path, dlerror());
  h.counters = (fake_counters_fn)dlsym(h.handle, "fake_plugin_counters");
  ck_assert_msg(h.counters != NULL, "%s has no fake_plugin_counters", path);
  free(path);
  return h;
}

static fake_counters counters_of(held_module h) {
  fake_counters c;
  memset(&c, 0, sizeof c);
  h.counters(&c);
  return c;
}

static tsr_runtime *runtime_without_discovery(void) {
  tsr_runtime_options o = {sizeof o};
  o.discover_plugins = 0;
  o.log_level = 0;
  tsr_runtime *rt = NULL;
  ck_assert_ok(tsr_runtime_create(&o, &rt));
  return rt;
}

/* x[2,3,4] -> Relu (relu_a) -> Sigmoid (sigmoid_mid) -> Relu (relu_b) -> y */
static tsr_model *relu_sigmoid_model(tsr_runtime *rt) {
  mb_model *m = mb_new(13);
  const int64_t dims[] = {2, 3, 4};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, dims);
  mb_node(m, "Relu", "relu_a", "x", "r1");
  mb_node(m, "Sigmoid", "sigmoid_mid", "r1", "s");
  mb_node(m, "Relu", "relu_b", "s", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return tsr_test_load_built(rt, m);
}

static tsr_session *make_session(tsr_runtime *rt, const tsr_model *model, const char *devices,
                                 int strict) {
  tsr_session_options so = {sizeof so};
  so.devices = devices;
  so.strict = strict;
  so.threads = 1;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  return s;
}

/* Runs the relu_sigmoid model on a fixed input with negatives and compares it with
 * relu(sigmoid(relu(x))) computed here. */
static void run_and_check(tsr_runtime *rt, tsr_session *s) {
  const int64_t dims[] = {2, 3, 4};
  float x[24];
  for (int i = 0; i < 24; i++)
    x[i] = (float)((i * 37) % 19 - 9) * 0.37f;
  tsr_tensor *in = NULL, *out = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 3, dims, x, sizeof x, &in));
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {in};
  ck_assert_ok(tsr_session_run(s, NULL, 1, names, ins, 1, NULL, &out));
  ck_assert_int_eq(tsr_tensor_dtype(out), TSR_DTYPE_FLOAT32);
  ck_assert_uint_eq(tsr_tensor_element_count(out), 24);
  const float *y = tsr_tensor_data(out);
  for (int i = 0; i < 24; i++) {
    double r = x[i] > 0 ? x[i] : 0.0;
    double want = 1.0 / (1.0 + exp(-r));
    ck_assert_msg(fabs(y[i] - want) <= 1e-5 + 1e-4 * fabs(want), "y[%d] = %g, expected %g", i,
                  (double)y[i], want);
  }
  tsr_tensor_destroy(out);
  tsr_tensor_destroy(in);
}

/* The CPU alone still runs a model: the runtime is usable after a plugin failed. */
static void cpu_still_works(tsr_runtime *rt) {
  tsr_model *model = relu_sigmoid_model(rt);
  tsr_session *s = make_session(rt, model, "cpu", 1);
  run_and_check(rt, s);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}

static size_t find_device(tsr_runtime *rt, const char *id) {
  for (size_t i = 0; i < tsr_runtime_device_count(rt); i++) {
    tsr_device_info info = {sizeof info};
    ck_assert_ok(tsr_runtime_device_info(rt, i, &info));
    if (!strcmp(info.id, id))
      return i;
  }
  return SIZE_MAX;
}

/* ---- Loading good plugins ----------------------------------------------------------------- */

START_TEST(test_good_plugin_loads) {
  tsr_runtime *rt = runtime_without_discovery();
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 1);
  char *path = module_path("fake");
  ck_assert_ok(tsr_runtime_load_plugin(rt, path));
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 0);
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 2);
  tsr_device_info cpu = {sizeof cpu};
  ck_assert_ok(tsr_runtime_device_info(rt, 0, &cpu));
  ck_assert_str_eq(cpu.id, "cpu");
  tsr_device_info info = {sizeof info};
  ck_assert_ok(tsr_runtime_device_info(rt, 1, &info));
  ck_assert_str_eq(info.id, "fake");
  ck_assert_str_eq(info.plugin, "fake");
  ck_assert_int_eq(info.kind, TSR_DEVICE_KIND_OTHER);
  ck_assert(info.flags & TSR_DEVICE_FLAG_SIMULATED);
  ck_assert(info.flags & TSR_DEVICE_FLAG_HOST_VISIBLE);
  ck_assert_ptr_nonnull(strstr(info.name, "Fake accelerator"));
  ck_assert_str_eq(info.features, "relu-only");
  ck_assert_uint_eq(info.memory_bytes, 1u << 20);
  /* A second copy of the same plugin is refused by name and recorded. */
  tsr_test_expect_error(tsr_runtime_load_plugin(rt, path), TSR_STATUS_DEVICE, "already loaded");
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 1);
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 2);
  free(path);
  tsr_runtime_destroy(rt);
}
END_TEST

/* A plugin built for a newer host answers version 1 to a v1 host, with a table larger than a
 * v1 table; the host reads only the members it knows and accepts it. */
START_TEST(test_newer_plugin_accepted) {
  held_module h = hold("fake_newer");
  tsr_runtime *rt = runtime_without_discovery();
  char *path = module_path("fake_newer");
  ck_assert_ok(tsr_runtime_load_plugin(rt, path));
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 0);
  ck_assert_uint_ne(find_device(rt, "fake_newer"), SIZE_MAX);
  tsr_model *model = relu_sigmoid_model(rt);
  tsr_session *s = make_session(rt, model, "fake_newer,cpu", 0);
  run_and_check(rt, s);
  ck_assert_int_ge(counters_of(h).executes, 2);
  /* Its node notes (ABI version 2) reach the plan: each Relu is node 0 of its partition. */
  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  for (size_t i = 0; i < 3; i += 2) {
    tsr_plan_node_info ni = {sizeof ni};
    ck_assert_ok(tsr_plan_get_node(plan, i, &ni));
    ck_assert_str_eq(ni.device, "fake_newer");
    ck_assert_str_eq(ni.kernel, "fake kernel 0");
  }
  tsr_plan_destroy(plan);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
  free(path);
  tsr_runtime_destroy(rt);
  fake_counters c = counters_of(h);
  ck_assert_int_eq(c.live_buffers, 0);
  ck_assert_int_eq(c.compiles, c.releases);
  ck_assert_int_eq(c.inits, c.shutdowns);
  dlclose(h.handle);
}
END_TEST

/* ---- Broken plugins: each is skipped with a reason that names the problem ------------------- */

static const struct broken_case {
  const char *variant; /* NULL: a path that is not a plugin (see below) */
  const char *reason;  /* a phrase the recorded reason must contain */
} broken[] = {
    {"fake_query_null", "returned NULL"},
    {"fake_init_fails", "the fake accelerator is not plugged in"},
    {"fake_no_execute", "execute"},
    {"fake_no_query", "tsr_plugin_query"},
    {"fake_small_table", "smaller"},
    {"fake_too_new", "newer"},
    {NULL, "cannot load"},
};

START_TEST(test_broken_plugin_skipped) {
  const struct broken_case *bc = &broken[_i];
  char *path = NULL;
  char *tmp = NULL;
  if (bc->variant) {
    path = module_path(bc->variant);
  } else {
    /* A file with a plugin's name that is not a shared library. */
    tmp = tsr_test_tmpdir();
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/libtessera_junk.so", tmp);
    ck_assert_int_eq(tsr_test_write_file(buf, "not an ELF file\n", 16), 0);
    path = strdup(buf);
  }
  tsr_runtime *rt = runtime_without_discovery();
  tsr_status st = tsr_runtime_load_plugin(rt, path);
  ck_assert_msg(st != NULL, "%s loaded, but should have been refused", path);
  char msg[2048];
  snprintf(msg, sizeof msg, "%s", tsr_status_message(st));
  tsr_status_free(st);
  ck_assert_msg(strstr(msg, bc->reason) != NULL, "error '%s' does not mention '%s'", msg,
                bc->reason);
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 1);
  const char *fpath = NULL, *reason = NULL;
  ck_assert_ok(tsr_runtime_plugin_failure(rt, 0, &fpath, &reason));
  ck_assert_str_eq(fpath, path);
  ck_assert_msg(strstr(reason, bc->reason) != NULL, "reason '%s' does not mention '%s'", reason,
                bc->reason);
  /* Nothing of the plugin stays behind, and the CPU still runs models. */
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 1);
  cpu_still_works(rt);
  /* A good plugin still loads after the failure. */
  char *good = module_path("fake");
  ck_assert_ok(tsr_runtime_load_plugin(rt, good));
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 2);
  free(good);
  tsr_runtime_destroy(rt);
  if (tmp) {
    unlink(path);
    rmdir(tmp);
    free(tmp);
  }
  free(path);
}
END_TEST

/* The failing init was called once, and a plugin that failed init is never shut down (it has
 * no state) and leaves no buffers behind. */
START_TEST(test_init_failure_is_clean) {
  held_module h = hold("fake_init_fails");
  fake_counters before = counters_of(h);
  tsr_runtime *rt = runtime_without_discovery();
  char *path = module_path("fake_init_fails");
  tsr_test_expect_error(tsr_runtime_load_plugin(rt, path), TSR_STATUS_DEVICE, "init failed");
  free(path);
  tsr_runtime_destroy(rt);
  fake_counters after = counters_of(h);
  ck_assert_int_eq(after.inits - before.inits, 1);
  ck_assert_int_eq(after.shutdowns - before.shutdowns, 0);
  ck_assert_int_eq(after.live_buffers, 0);
  dlclose(h.handle);
}
END_TEST

START_TEST(test_load_errors) {
  tsr_runtime *rt = runtime_without_discovery();
  tsr_test_expect_error(tsr_runtime_load_plugin(rt, NULL), TSR_STATUS_INVALID_ARGUMENT, NULL);
  tsr_test_expect_error(tsr_runtime_load_plugin(NULL, "x.so"), TSR_STATUS_INVALID_ARGUMENT, NULL);
  tsr_test_expect_error(tsr_runtime_load_plugin(rt, "/nonexistent/libtessera_none.so"),
                        TSR_STATUS_DEVICE, "libtessera_none.so");
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 1);
  const char *p = "x", *r = "x";
  tsr_test_expect_error(tsr_runtime_plugin_failure(rt, 1, &p, &r), TSR_STATUS_INVALID_ARGUMENT,
                        "out of range");
  ck_assert_ptr_null(p);
  ck_assert_ptr_null(r);
  cpu_still_works(rt);
  tsr_runtime_destroy(rt);
}
END_TEST

/* ---- Discovery ------------------------------------------------------------------------------ */

static void link_module(const char *dir, const char *variant, const char *as) {
  char *target = module_path(variant);
  char link_path[4096];
  snprintf(link_path, sizeof link_path, "%s/%s", dir, as);
  ck_assert_msg(symlink(target, link_path) == 0, "symlink %s", link_path);
  free(target);
}

START_TEST(test_discovery_by_plugin_path) {
  char *good = tsr_test_tmpdir(), *mixed = tsr_test_tmpdir();
  static const char *const good_names[] = {"libtessera_fake.so", "notaplugin.so",
                                           "libtessera_fake_newer.so.disabled"};
  link_module(good, "fake", good_names[0]);
  link_module(good, "fake_newer", good_names[1]); /* wrong prefix: ignored */
  link_module(good, "fake_newer", good_names[2]); /* wrong suffix: ignored */
  static const char *const mixed_names[] = {
      "libtessera_fake_staging.so", "libtessera_fake_init_fails.so", "libtessera_fake_no_query.so"};
  link_module(mixed, "fake_staging", mixed_names[0]);
  link_module(mixed, "fake_init_fails", mixed_names[1]);
  link_module(mixed, "fake_no_query", mixed_names[2]);

  char env[8192];
  snprintf(env, sizeof env, "/nonexistent-tessera-dir:%s::%s", good, mixed);
  ck_assert_int_eq(setenv("TESSERA_PLUGIN_PATH", env, 1), 0);
  tsr_runtime_options o = {sizeof o};
  o.discover_plugins = 1;
  tsr_runtime *rt = NULL;
  ck_assert_ok(tsr_runtime_create(&o, &rt));
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 3);
  ck_assert_uint_eq(find_device(rt, "cpu"), 0);
  ck_assert_uint_ne(find_device(rt, "fake"), SIZE_MAX);
  ck_assert_uint_ne(find_device(rt, "fake_staging"), SIZE_MAX);
  ck_assert_uint_eq(find_device(rt, "fake_newer"), SIZE_MAX);
  /* The broken ones were found and recorded, each with its own reason. */
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 2);
  bool saw_init = false, saw_query = false;
  for (size_t i = 0; i < 2; i++) {
    const char *path, *reason;
    ck_assert_ok(tsr_runtime_plugin_failure(rt, i, &path, &reason));
    if (strstr(path, "libtessera_fake_init_fails.so"))
      saw_init = strstr(reason, "not plugged in") != NULL;
    if (strstr(path, "libtessera_fake_no_query.so"))
      saw_query = strstr(reason, "tsr_plugin_query") != NULL;
  }
  ck_assert_msg(saw_init && saw_query, "failures not recorded as expected");
  /* The discovered plugin runs its nodes. */
  tsr_model *model = relu_sigmoid_model(rt);
  tsr_session *s = make_session(rt, model, "auto", 0);
  run_and_check(rt, s);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);

  /* Discovery off: the variable is ignored. */
  o.discover_plugins = 0;
  ck_assert_ok(tsr_runtime_create(&o, &rt));
  ck_assert_uint_eq(tsr_runtime_device_count(rt), 1);
  ck_assert_uint_eq(tsr_runtime_plugin_failure_count(rt), 0);
  tsr_runtime_destroy(rt);
  unsetenv("TESSERA_PLUGIN_PATH");

  char buf[4096];
  for (size_t i = 0; i < 3; i++) {
    snprintf(buf, sizeof buf, "%s/%s", good, good_names[i]);
    unlink(buf);
    snprintf(buf, sizeof buf, "%s/%s", mixed, mixed_names[i]);
    unlink(buf);
  }
  rmdir(good);
  rmdir(mixed);
  free(good);
  free(mixed);
}
END_TEST

/* ---- Placement, plans, strict mode ---------------------------------------------------------- */

static void expect_node(const tsr_plan *plan, size_t i, const char *name, const char *device) {
  tsr_plan_node_info ni = {sizeof ni};
  ck_assert_ok(tsr_plan_get_node(plan, i, &ni));
  ck_assert_str_eq(ni.name, name);
  ck_assert_msg(!strcmp(ni.device, device), "node %s runs on %s, expected %s", name, ni.device,
                device);
}

START_TEST(test_placement_on_plugin) {
  held_module h = hold("fake");
  fake_counters before = counters_of(h);
  tsr_runtime *rt = runtime_without_discovery();
  char *path = module_path("fake");
  ck_assert_ok(tsr_runtime_load_plugin(rt, path));
  free(path);
  tsr_model *model = relu_sigmoid_model(rt);
  tsr_session *s = make_session(rt, model, "fake,cpu", 0);

  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  ck_assert_uint_eq(tsr_plan_node_count(plan), 3);
  expect_node(plan, 0, "relu_a", "fake");
  expect_node(plan, 1, "sigmoid_mid", "cpu");
  expect_node(plan, 2, "relu_b", "fake");
  tsr_plan_node_info ni = {sizeof ni};
  ck_assert_ok(tsr_plan_get_node(plan, 0, &ni));
  ck_assert_int_eq(ni.reason, TSR_REASON_NONE);
  ck_assert(ni.estimated_cost_us >= 0);
  /* A version 1 plugin gives no node notes (its node_note slot aborts if called). */
  ck_assert_str_eq(ni.kernel, "");
  /* A caller built before the kernel member sees its struct filled up to its own size. */
  const char *untouched = "untouched";
  tsr_plan_node_info old = {offsetof(tsr_plan_node_info, kernel)};
  old.kernel = untouched;
  ck_assert_ok(tsr_plan_get_node(plan, 0, &old));
  ck_assert_str_eq(old.name, "relu_a");
  ck_assert_ptr_eq(old.kernel, untouched);
  ck_assert_ok(tsr_plan_get_node(plan, 1, &ni));
  ck_assert_int_eq(ni.reason, TSR_REASON_OP);
  ck_assert_str_eq(ni.refused_by, "fake");
  ck_assert_msg(strstr(ni.reason_text, "runs only Relu") != NULL, "reason text '%s'",
                ni.reason_text);
  ck_assert_str_eq(tsr_reason_name(ni.reason), "op");
  ck_assert_uint_eq(tsr_plan_partition_count(plan), 3);
  static const char *const part_dev[] = {"fake", "cpu", "fake"};
  for (size_t i = 0; i < 3; i++) {
    tsr_plan_partition_info pi = {sizeof pi};
    ck_assert_ok(tsr_plan_get_partition(plan, i, &pi));
    ck_assert_str_eq(pi.device, part_dev[i]);
    ck_assert_uint_eq(pi.node_count, 1);
  }
  /* Each cut moves 96 bytes (24 floats) between the devices. */
  tsr_plan_partition_info mid = {sizeof mid};
  ck_assert_ok(tsr_plan_get_partition(plan, 1, &mid));
  ck_assert_uint_eq(mid.bytes_in, 96);
  ck_assert_uint_eq(mid.bytes_out, 96);
  tsr_plan_destroy(plan);

  run_and_check(rt, s);
  fake_counters c = counters_of(h);
  ck_assert_int_eq(c.compiles - before.compiles, 2);
  ck_assert_int_eq(c.executes - before.executes, 2);

  /* The profile shows time on the fake device, and the plugin's per-node times. */
  tsr_profile *prof = NULL;
  ck_assert_ok(tsr_profile_create(&prof));
  const int64_t dims[] = {2, 3, 4};
  tsr_tensor *in = NULL, *out = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 3, dims, &in));
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {in};
  tsr_run_options ro = {sizeof ro, prof};
  ck_assert_ok(tsr_session_run(s, &ro, 1, names, ins, 1, NULL, &out));
  bool fake_dev = false, fake_node = false;
  for (size_t i = 0; i < tsr_profile_device_count(prof); i++) {
    tsr_profile_entry e = {sizeof e};
    ck_assert_ok(tsr_profile_device(prof, i, &e));
    fake_dev |= !strcmp(e.device, "fake");
  }
  for (size_t i = 0; i < tsr_profile_node_count(prof); i++) {
    tsr_profile_entry e = {sizeof e};
    ck_assert_ok(tsr_profile_node(prof, i, &e));
    fake_node |= !strcmp(e.device, "fake") && !strcmp(e.op_type, "Relu");
  }
  ck_assert_msg(fake_dev && fake_node, "profile lacks the fake device (%d) or its nodes (%d)",
                fake_dev, fake_node);
  tsr_tensor_destroy(out);
  tsr_tensor_destroy(in);
  tsr_profile_destroy(prof);

  tsr_session_destroy(s);
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);
  c = counters_of(h);
  ck_assert_int_eq(c.live_buffers, 0);
  ck_assert_int_eq(c.compiles, c.releases);
  ck_assert_int_eq(c.inits, c.shutdowns);
  dlclose(h.handle);
}
END_TEST

START_TEST(test_strict_mode) {
  tsr_runtime *rt = runtime_without_discovery();
  char *path = module_path("fake");
  ck_assert_ok(tsr_runtime_load_plugin(rt, path));
  free(path);
  tsr_model *model = relu_sigmoid_model(rt);
  /* Strict with only the fake device: the Sigmoid has nowhere to go. The shapes are static, so
   * the session plans at creation; a run would report the same. */
  tsr_session_options so = {sizeof so};
  so.devices = "fake";
  so.strict = 1;
  tsr_session *s = NULL;
  tsr_status st = tsr_session_create(rt, model, &so, &s);
  ck_assert_ptr_null(s);
  tsr_test_expect_error(st, TSR_STATUS_UNSUPPORTED, "sigmoid_mid");
  /* Not strict: the CPU is added as the fallback. */
  s = make_session(rt, model, "fake", 0);
  run_and_check(rt, s);
  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  expect_node(plan, 1, "sigmoid_mid", "cpu");
  tsr_plan_destroy(plan);
  tsr_session_destroy(s);
  /* Strict with the fake device and the CPU listed works. */
  s = make_session(rt, model, "fake,cpu", 1);
  run_and_check(rt, s);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);
}
END_TEST

/* ---- Staging copies, and concurrent runs ---------------------------------------------------- */

START_TEST(test_staging_without_optional_slots) {
  held_module h = hold("fake_staging");
  fake_counters before = counters_of(h);
  tsr_runtime *rt = runtime_without_discovery();
  char *path = module_path("fake_staging");
  ck_assert_ok(tsr_runtime_load_plugin(rt, path));
  free(path);
  size_t d = find_device(rt, "fake_staging");
  ck_assert_uint_ne(d, SIZE_MAX);
  tsr_device_info info = {sizeof info};
  ck_assert_ok(tsr_runtime_device_info(rt, d, &info));
  ck_assert(!(info.flags & TSR_DEVICE_FLAG_HOST_VISIBLE));
  tsr_model *model = relu_sigmoid_model(rt);
  tsr_session *s = make_session(rt, model, "fake_staging,cpu", 0);
  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  expect_node(plan, 0, "relu_a", "fake_staging");
  expect_node(plan, 1, "sigmoid_mid", "cpu");
  expect_node(plan, 2, "relu_b", "fake_staging");
  tsr_plan_destroy(plan);
  run_and_check(rt, s);
  fake_counters c = counters_of(h);
  /* In: the graph input and the Sigmoid's result were written; out: the first Relu's result
   * and the graph output were read. */
  ck_assert_int_ge(c.writes - before.writes, 2);
  ck_assert_int_ge(c.reads - before.reads, 2);
  ck_assert_int_eq(c.executes - before.executes, 2);
  ck_assert_int_eq(c.host_pointers, 0);
  ck_assert_int_eq(c.copies, 0);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);
  c = counters_of(h);
  ck_assert_int_eq(c.live_buffers, 0);
  ck_assert_int_eq(c.compiles, c.releases);
  dlclose(h.handle);
}
END_TEST

typedef struct runner {
  tsr_runtime *rt;
  tsr_session *s;
} runner;

static void *run_many(void *arg) {
  runner *r = arg;
  for (int i = 0; i < 20; i++)
    run_and_check(r->rt, r->s);
  return NULL;
}

START_TEST(test_concurrent_runs_on_plugin) {
  tsr_runtime *rt = runtime_without_discovery();
  const char *variants[] = {"fake", "fake_staging"};
  for (size_t i = 0; i < 2; i++) {
    char *path = module_path(variants[i]);
    ck_assert_ok(tsr_runtime_load_plugin(rt, path));
    free(path);
  }
  tsr_model *model = relu_sigmoid_model(rt);
  /* Once with each plugin first in the list, so each runs the Relu nodes from four threads. */
  const char *lists[] = {"fake,cpu", "fake_staging,cpu"};
  for (size_t l = 0; l < 2; l++) {
    tsr_session *s = make_session(rt, model, lists[l], 0);
    pthread_t th[4];
    runner r = {rt, s};
    for (int t = 0; t < 4; t++)
      ck_assert_int_eq(pthread_create(&th[t], NULL, run_many, &r), 0);
    for (int t = 0; t < 4; t++)
      pthread_join(th[t], NULL);
    tsr_session_destroy(s);
  }
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);
}
END_TEST

static Suite *plugin_abi_suite(void) {
  Suite *s = suite_create("plugin_abi");
  TCase *tc = tcase_create("load");
  tcase_add_test(tc, test_good_plugin_loads);
  tcase_add_test(tc, test_newer_plugin_accepted);
  tcase_add_loop_test(tc, test_broken_plugin_skipped, 0, (int)(sizeof broken / sizeof broken[0]));
  tcase_add_test(tc, test_init_failure_is_clean);
  tcase_add_test(tc, test_load_errors);
  tcase_add_test(tc, test_discovery_by_plugin_path);
  suite_add_tcase(s, tc);
  tc = tcase_create("placement");
  tcase_add_test(tc, test_placement_on_plugin);
  tcase_add_test(tc, test_strict_mode);
  tcase_add_test(tc, test_staging_without_optional_slots);
  tcase_add_test(tc, test_concurrent_runs_on_plugin);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(plugin_abi_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
