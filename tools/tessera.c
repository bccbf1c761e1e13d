/* The `tessera` command-line program: list devices, run a model, show its plan. It uses only
 * the public API in tessera.h. Every error exits non-zero with one line on stderr. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tessera/tessera.h"
#include "tools/cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage:\n"
          "  tessera devices\n"
          "  tessera run MODEL.onnx [--input NAME=FILE]... [--output-dir DIR] [--device LIST]\n"
          "              [--threads N] [--strict] [--fp16] [--repeat N] [--profile]\n"
          "  tessera partition MODEL.onnx [--device LIST] [--shape NAME=D1xD2...]... [--json]\n"
          "  tessera bench MODEL.onnx [--input NAME=FILE | --shape NAME=D1xD2...]...\n"
          "              [--device LIST|all] [--threads N] [--fp16] [--warmup N] [--iterations N]\n"
          "              [--json] [--profile TRACE.json]\n"
          "\n"
          "FILE is a .npy file or an ONNX TensorProto (.pb). LIST is 'auto' or device ids or\n"
          "plugin names in preference order, e.g. 'opencl,cpu'. Outputs are written to\n"
          "DIR/<output name>.npy with characters outside [A-Za-z0-9._-] replaced by '_'.\n"
          "--fp16 lets devices that support it compute float32 work in float16 (less precise;\n"
          "each plugin's README says what it does with it).\n");
}

static const char *kind_name(tsr_device_kind k) {
  switch (k) {
  case TSR_DEVICE_KIND_CPU: return "cpu";
  case TSR_DEVICE_KIND_GPU: return "gpu";
  case TSR_DEVICE_KIND_NPU: return "npu";
  default: return "other";
  }
}

static int cmd_devices(tsr_runtime *rt) {
  size_t n = tsr_runtime_device_count(rt);
  printf("%-12s %-6s %-8s %-10s %s\n", "ID", "KIND", "PLUGIN", "MEMORY", "NAME / FEATURES");
  for (size_t i = 0; i < n; i++) {
    tsr_device_info d = {sizeof d};
    tsr_status s = tsr_runtime_device_info(rt, i, &d);
    if (s) return fail_status("device info", s);
    char mem[32];
    snprintf(mem, sizeof mem, "%.1f GiB", (double)d.memory_bytes / (1024.0 * 1024 * 1024));
    printf("%-12s %-6s %-8s %-10s %s%s\n", d.id, kind_name(d.kind), d.plugin, mem, d.name,
           (d.flags & TSR_DEVICE_FLAG_SIMULATED) ? " [SIMULATED: not real hardware]" : "");
    printf("%-12s %-6s %-8s %-10s vendor=%s driver=%s units=%u features: %s\n", "", "", "", "",
           d.vendor, d.driver, d.compute_units, d.features);
  }
  size_t nf = tsr_runtime_plugin_failure_count(rt);
  for (size_t i = 0; i < nf; i++) {
    const char *path, *reason;
    if (!tsr_runtime_plugin_failure(rt, i, &path, &reason))
      printf("skipped plugin %s: %s\n", path, reason);
  }
  return 0;
}

static void sanitize(const char *name, char *out, size_t size) {
  size_t i = 0;
  for (; name[i] && i + 1 < size; i++) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    out[i] = ok ? c : '_';
  }
  out[i] = '\0';
}

static void print_dims(const int64_t *dims, size_t rank) {
  printf("[");
  for (size_t i = 0; i < rank; i++) printf(i ? ",%lld" : "%lld", (long long)dims[i]);
  printf("]");
}

static double elem_as_double(tsr_tensor *t, size_t i) {
  const void *p = tsr_tensor_data(t);
  switch (tsr_tensor_dtype(t)) {
  case TSR_DTYPE_FLOAT32: return ((const float *)p)[i];
  case TSR_DTYPE_FLOAT64: return ((const double *)p)[i];
  case TSR_DTYPE_INT64: return (double)((const int64_t *)p)[i];
  case TSR_DTYPE_INT32: return ((const int32_t *)p)[i];
  case TSR_DTYPE_INT8: return ((const int8_t *)p)[i];
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_BOOL: return ((const uint8_t *)p)[i];
  default: return 0.0;
  }
}

static int cmd_run(tsr_runtime *rt, const cli_opts *o) {
  tsr_model *model = NULL;
  tsr_session *session = NULL;
  tsr_tensor **inputs = calloc(o->n_in + 1, sizeof *inputs);
  size_t n_out = 0;
  tsr_tensor **outputs = NULL;
  tsr_profile *profile = NULL;
  int rc = load_session(rt, o, NULL, &model, &session);
  for (size_t i = 0; !rc && i < o->n_in; i++) {
    tsr_status s = tsr_tensor_load_file(rt, o->in_files[i], &inputs[i]);
    if (s) {
      char what[512];
      snprintf(what, sizeof what, "input '%s'", o->in_names[i]);
      rc = fail_status(what, s);
    }
  }
  if (!rc) {
    n_out = tsr_model_output_count(model);
    outputs = calloc(n_out + 1, sizeof *outputs);
    tsr_status s = tsr_profile_create(&profile);
    if (s) rc = fail_status("profile", s);
  }
  double first_ms = 0, total_ms = 0;
  for (int r = 0; !rc && r < o->repeat; r++) {
    for (size_t i = 0; i < n_out; i++) {
      tsr_tensor_destroy(outputs[i]);
      outputs[i] = NULL;
    }
    if (r == 1) tsr_profile_reset(profile);
    tsr_run_options ro = {sizeof ro, profile};
    double t0 = now_ms();
    tsr_status s = tsr_session_run(session, &ro, o->n_in, o->in_names,
                                   (const tsr_tensor *const *)inputs, n_out, NULL, outputs);
    double dt = now_ms() - t0;
    if (s) rc = fail_status("running model", s);
    if (r == 0) first_ms = dt;
    else total_ms += dt;
  }
  if (!rc && o->output_dir) {
    if (mkdir(o->output_dir, 0777) != 0 && errno != EEXIST)
      rc = fail("cannot create output folder '%s': %s", o->output_dir, strerror(errno));
  }
  for (size_t i = 0; !rc && i < n_out; i++) {
    tsr_value_info info = {sizeof info};
    tsr_model_output_info(model, i, &info);
    printf("output %s: %s ", info.name, tsr_dtype_name(tsr_tensor_dtype(outputs[i])));
    print_dims(tsr_tensor_dims(outputs[i]), tsr_tensor_rank(outputs[i]));
    size_t cnt = tsr_tensor_element_count(outputs[i]);
    printf(" =");
    for (size_t k = 0; k < cnt && k < 6; k++) printf(" %.6g", elem_as_double(outputs[i], k));
    printf("%s\n", cnt > 6 ? " ..." : "");
    if (o->output_dir) {
      char safe[512], path[4096];
      sanitize(info.name, safe, sizeof safe);
      snprintf(path, sizeof path, "%s/%s.npy", o->output_dir, safe);
      tsr_status s = tsr_tensor_save_npy(outputs[i], path);
      if (s) rc = fail_status("writing output", s);
    }
  }
  if (!rc) {
    uint64_t runs = tsr_profile_run_count(profile);
    printf("latency: first run %.3f ms", first_ms);
    if (o->repeat > 1) printf(", mean of %d more %.3f ms", o->repeat - 1, total_ms / (o->repeat - 1));
    printf("\n");
    for (size_t d = 0; d < tsr_profile_device_count(profile); d++) {
      tsr_profile_entry e = {sizeof e};
      if (tsr_profile_device(profile, d, &e)) continue;
      printf("device %-10s %.3f ms per run\n", e.device,
             (double)e.total_ns / 1e6 / (double)(runs ? runs : 1));
    }
    if (o->profile) print_op_profile(profile, runs);
  }
  for (size_t i = 0; outputs && i < n_out; i++) tsr_tensor_destroy(outputs[i]);
  free(outputs);
  for (size_t i = 0; i < o->n_in; i++) tsr_tensor_destroy(inputs[i]);
  free(inputs);
  tsr_profile_destroy(profile);
  tsr_session_destroy(session);
  tsr_model_destroy(model);
  return rc;
}

static int cmd_partition(tsr_runtime *rt, const cli_opts *o) {
  tsr_model *model = NULL;
  tsr_session *session = NULL;
  tsr_plan *plan = NULL;
  int rc = load_session(rt, o, NULL, &model, &session);
  int64_t(*dims)[16] = calloc(o->n_in + 1, sizeof *dims);
  size_t *ranks = calloc(o->n_in + 1, sizeof *ranks);
  const int64_t **shapes = calloc(o->n_in + 1, sizeof *shapes);
  for (size_t i = 0; !rc && i < o->n_in; i++) {
    if (parse_shape(o->in_files[i], dims[i], &ranks[i], 16) != 0)
      rc = fail("--shape %s=%s: expected dimensions like 1x3x224x224", o->in_names[i],
                o->in_files[i]);
    shapes[i] = dims[i];
  }
  if (!rc) {
    tsr_status s = tsr_session_plan(session, o->n_in, o->in_names, ranks, shapes, &plan);
    if (s) rc = fail_status("planning", s);
  }
  if (!rc) {
    size_t nn = tsr_plan_node_count(plan), np = tsr_plan_partition_count(plan);
    if (o->json) {
      printf("{\"model\": ");
      json_string(stdout, o->model);
      printf(", \"nodes\": [");
      for (size_t i = 0; i < nn; i++) {
        tsr_plan_node_info ni = {sizeof ni};
        tsr_plan_get_node(plan, i, &ni);
        printf("%s\n  {\"name\": ", i ? "," : "");
        json_string(stdout, ni.name);
        printf(", \"op\": ");
        json_string(stdout, ni.op_type);
        printf(", \"device\": ");
        json_string(stdout, ni.device);
        printf(", \"partition\": ");
        if (ni.partition == SIZE_MAX) printf("null");
        else printf("%zu", ni.partition);
        printf(", \"kernel\": ");
        json_string(stdout, ni.kernel ? ni.kernel : "");
        printf(", \"reason\": ");
        if (ni.reason == TSR_REASON_NONE) {
          printf("null");
        } else {
          char buf[512];
          snprintf(buf, sizeof buf, "%s refused (%s): %s", ni.refused_by, tsr_reason_name(ni.reason),
                   ni.reason_text);
          json_string(stdout, buf);
        }
        printf("}");
      }
      printf("\n], \"partitions\": [");
      for (size_t i = 0; i < np; i++) {
        tsr_plan_partition_info pi = {sizeof pi};
        tsr_plan_get_partition(plan, i, &pi);
        printf("%s\n  {\"index\": %zu, \"device\": ", i ? "," : "", i);
        json_string(stdout, pi.device);
        printf(", \"node_count\": %zu, \"bytes_in\": %llu, \"bytes_out\": %llu}", pi.node_count,
               (unsigned long long)pi.bytes_in, (unsigned long long)pi.bytes_out);
      }
      printf("\n], \"arena_bytes\": %llu}\n", (unsigned long long)tsr_plan_arena_bytes(plan));
    } else {
      printf("%-32s %-20s %-10s %-5s %s\n", "NODE", "OP", "DEVICE", "PART",
             "KERNEL; REASON (when a device refused it)");
      for (size_t i = 0; i < nn; i++) {
        tsr_plan_node_info ni = {sizeof ni};
        tsr_plan_get_node(plan, i, &ni);
        char part[32] = "-";
        if (ni.partition != SIZE_MAX) snprintf(part, sizeof part, "%zu", ni.partition);
        printf("%-32s %-20s %-10s %-5s %s", ni.name, ni.op_type, ni.device, part,
               ni.kernel && *ni.kernel ? ni.kernel : "-");
        if (ni.reason != TSR_REASON_NONE)
          printf("; %s refused (%s): %s", ni.refused_by, tsr_reason_name(ni.reason),
                 ni.reason_text);
        printf("\n");
      }
      printf("\n%zu partitions:\n", np);
      for (size_t i = 0; i < np; i++) {
        tsr_plan_partition_info pi = {sizeof pi};
        tsr_plan_get_partition(plan, i, &pi);
        printf("  %zu: %-10s %4zu nodes, %llu bytes in, %llu bytes out\n", i, pi.device,
               pi.node_count, (unsigned long long)pi.bytes_in, (unsigned long long)pi.bytes_out);
      }
      printf("activation memory: %llu bytes\n", (unsigned long long)tsr_plan_arena_bytes(plan));
    }
  }
  tsr_plan_destroy(plan);
  free(dims);
  free(ranks);
  free(shapes);
  tsr_session_destroy(session);
  tsr_model_destroy(model);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "devices") && strcmp(cmd, "run") && strcmp(cmd, "partition") &&
      strcmp(cmd, "bench")) {
    fail("unknown command '%s' (commands: devices, run, partition, bench)", cmd);
    return 2;
  }
  tsr_runtime_options ro = {sizeof ro};
  ro.discover_plugins = 1;
  ro.log_level = 1;
  tsr_runtime *rt = NULL;
  tsr_status s = tsr_runtime_create(&ro, &rt);
  if (s) return fail_status("starting runtime", s);
  int rc;
  if (!strcmp(cmd, "devices")) {
    rc = cmd_devices(rt);
  } else {
    cli_opts o;
    rc = parse_args(argc, argv, &o);
    if (!rc)
      rc = !strcmp(cmd, "run")     ? cmd_run(rt, &o)
           : !strcmp(cmd, "bench") ? cmd_bench(rt, &o)
                                   : cmd_partition(rt, &o);
    free_args(&o);
  }
  tsr_runtime_destroy(rt);
  return rc;
}
