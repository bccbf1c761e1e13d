/* `tessera bench`: latency of a model per device, as a table for people and JSON for scripts,
 * with an optional per-operator trace in the Chrome/Perfetto JSON format. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tools/cli.h"

typedef struct bench_result {
  char device[64];
  double load_ms, first_ms, min_ms, median_ms, p90_ms, p99_ms, mean_ms;
  double peak_rss_mb;
  int iterations;
  double *runs_ms; /* each measured run's latency, in the order they ran (owned) */
} bench_result;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p) {
  int idx = (int)ceil(p * n) - 1;
  if (idx < 0) idx = 0;
  if (idx >= n) idx = n - 1;
  return sorted[idx];
}

static double peak_rss_mb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* Deterministic pseudo-random fill, so runs are comparable across tools and sessions. */
static void fill_tensor(tsr_tensor *t, uint32_t seed) {
  size_t n = tsr_tensor_element_count(t);
  void *p = tsr_tensor_data(t);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    double u = (double)(x >> 8) / 16777216.0;
    switch (tsr_tensor_dtype(t)) {
    case TSR_DTYPE_FLOAT32: ((float *)p)[i] = (float)u; break;
    case TSR_DTYPE_FLOAT64: ((double *)p)[i] = u; break;
    case TSR_DTYPE_INT64: ((int64_t *)p)[i] = (int64_t)(u * 100); break;
    case TSR_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)(u * 100); break;
    case TSR_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)(u * 255); break;
    case TSR_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)(u * 255 - 128); break;
    case TSR_DTYPE_BOOL: ((uint8_t *)p)[i] = u > 0.5; break;
    default: break;
    }
  }
}

/* Inputs from files, from --shape (random values), or from the model's shapes with symbolic
 * dimensions set to 1. */
static int make_inputs(tsr_runtime *rt, const tsr_model *model, const cli_opts *o,
                       const char **names, tsr_tensor **inputs) {
  size_t n = tsr_model_input_count(model);
  for (size_t i = 0; i < n; i++) {
    tsr_value_info info = {sizeof info};
    tsr_status s = tsr_model_input_info(model, i, &info);
    if (s) return fail_status("input info", s);
    names[i] = info.name;
    const char *given = NULL;
    bool is_shape = false;
    for (size_t k = 0; k < o->n_in; k++)
      if (!strcmp(o->in_names[k], info.name)) {
        given = o->in_files[k];
        is_shape = o->is_shape[k];
      }
    if (given && !is_shape) {
      s = tsr_tensor_load_file(rt, given, &inputs[i]);
      if (s) return fail_status("reading input", s);
      continue;
    }
    int64_t dims[16];
    size_t rank = 0;
    if (given) {
      if (parse_shape(given, dims, &rank, 16) != 0)
        return fail("--shape %s=%s: expected dimensions like 1x3x224x224", info.name, given);
    } else {
      if (info.rank < 0 || info.rank > 16)
        return fail("input '%s' has no usable shape in the model; give --shape %s=DIMS",
                    info.name, info.name);
      rank = (size_t)info.rank;
      for (size_t d = 0; d < rank; d++) dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
    }
    s = tsr_tensor_create(rt, info.dtype, rank, dims, &inputs[i]);
    if (s) return fail_status("creating input", s);
    fill_tensor(inputs[i], (uint32_t)i + 1);
  }
  for (size_t k = 0; k < o->n_in; k++) {
    bool known = false;
    for (size_t i = 0; i < n; i++) known |= !strcmp(names[i], o->in_names[k]);
    if (!known) return fail("the model has no input '%s'", o->in_names[k]);
  }
  return 0;
}

/* Writes the average run as a Chrome trace: one complete event per node, laid end to end in
 * execution order with its mean duration (the profile keeps sums, not single runs). */
static int write_trace(const char *path, const tsr_profile *profile, uint64_t runs) {
  FILE *f = fopen(path, "w");
  if (!f) return fail("cannot write trace '%s'", path);
  fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
  double ts = 0;
  size_t n = tsr_profile_node_count(profile);
  for (size_t i = 0; i < n; i++) {
    tsr_profile_entry e = {sizeof e};
    if (tsr_profile_node(profile, i, &e)) continue;
    double dur = (double)e.total_ns / 1e3 / (double)(runs ? runs : 1);
    fprintf(f, "%s  {\"name\": ", i ? ",\n" : "");
    json_string(f, e.name);
    fprintf(f, ", \"cat\": ");
    json_string(f, e.op_type);
    fprintf(f, ", \"ph\": \"X\", \"pid\": 1, \"tid\": ");
    json_string(f, e.device);
    fprintf(f, ", \"ts\": %.3f, \"dur\": %.3f, \"args\": {\"op\": ", ts, dur);
    json_string(f, e.op_type);
    fprintf(f, ", \"calls\": %llu", (unsigned long long)e.calls);
    if (e.kernel && *e.kernel) {
      fprintf(f, ", \"kernel\": ");
      json_string(f, e.kernel);
    }
    fprintf(f, "}}");
    ts += dur;
  }
  fprintf(f, "\n]}\n");
  if (fclose(f) != 0) return fail("cannot write trace '%s'", path);
  return 0;
}

static int bench_device(tsr_runtime *rt, const cli_opts *o, const char *devices,
                        bench_result *r, bool want_profile) {
  memset(r, 0, sizeof *r);
  snprintf(r->device, sizeof r->device, "%s", devices ? devices : "auto");
  tsr_model *model = NULL;
  tsr_session *session = NULL;
  double t0 = now_ms();
  int rc = load_session(rt, o, devices, &model, &session);
  r->load_ms = now_ms() - t0;
  size_t n_in = model ? tsr_model_input_count(model) : 0;
  size_t n_out = model ? tsr_model_output_count(model) : 0;
  const char **names = calloc(n_in + 1, sizeof *names);
  tsr_tensor **inputs = calloc(n_in + 1, sizeof *inputs);
  tsr_tensor **outputs = calloc(n_out + 1, sizeof *outputs);
  /* The runs in order, for the JSON (a shared machine's slow spells show as stretches of
   * slower runs, which the percentiles cannot tell from scattered ones), and sorted. */
  r->runs_ms = calloc((size_t)o->iterations + 1, sizeof *r->runs_ms);
  double *times = calloc((size_t)o->iterations + 1, sizeof *times);
  tsr_profile *profile = NULL;
  if (!rc && (!names || !inputs || !outputs || !times || !r->runs_ms))
    rc = fail("out of memory");
  if (!rc) rc = make_inputs(rt, model, o, names, inputs);
  if (!rc && want_profile) {
    tsr_status s = tsr_profile_create(&profile);
    if (s) rc = fail_status("profile", s);
  }
  int total = o->warmup + o->iterations + 1;
  for (int it = 0; !rc && it < total; it++) {
    bool measured = it > o->warmup;
    tsr_run_options ro = {sizeof ro, measured ? profile : NULL};
    double s0 = now_ms();
    tsr_status s = tsr_session_run(session, &ro, n_in, names, (const tsr_tensor *const *)inputs,
                                   n_out, NULL, outputs);
    double dt = now_ms() - s0;
    for (size_t k = 0; k < n_out; k++) {
      tsr_tensor_destroy(outputs[k]);
      outputs[k] = NULL;
    }
    if (s) {
      rc = fail_status("running model", s);
      break;
    }
    if (it == 0) r->first_ms = dt;
    if (measured)
      r->runs_ms[it - o->warmup - 1] = dt;
  }
  if (!rc) {
    int n = o->iterations;
    double sum = 0;
    for (int i = 0; i < n; i++)
      sum += r->runs_ms[i];
    memcpy(times, r->runs_ms, (size_t)n * sizeof *times); /* sorted for the percentiles */
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    r->iterations = n;
    r->min_ms = times[0];
    r->median_ms = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    r->p90_ms = percentile(times, n, 0.90);
    r->p99_ms = percentile(times, n, 0.99);
    r->mean_ms = sum / n;
    r->peak_rss_mb = peak_rss_mb();
    if (profile) {
      /* With --json, stdout carries the JSON alone. */
      if (!o->json) print_op_profile(profile, tsr_profile_run_count(profile));
      rc = write_trace(o->profile_file, profile, tsr_profile_run_count(profile));
      if (!rc)
        fprintf(o->json ? stderr : stdout,
                "trace written to %s (open it in ui.perfetto.dev or chrome://tracing)\n",
                o->profile_file);
    }
  }
  for (size_t k = 0; inputs && k < n_in; k++) tsr_tensor_destroy(inputs[k]);
  free(inputs);
  free(outputs);
  free(names);
  free(times);
  tsr_profile_destroy(profile);
  tsr_session_destroy(session);
  tsr_model_destroy(model);
  return rc;
}

static void print_json(const bench_result *r) {
  printf("{\"device\": ");
  json_string(stdout, r->device);
  printf(", \"iterations\": %d, \"load_ms\": %.3f, \"first_run_ms\": %.3f, \"min_ms\": %.4f, "
         "\"median_ms\": %.4f, \"mean_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, "
         "\"peak_rss_mb\": %.1f, \"runs_ms\": [",
         r->iterations, r->load_ms, r->first_ms, r->min_ms, r->median_ms, r->mean_ms, r->p90_ms,
         r->p99_ms, r->peak_rss_mb);
  for (int i = 0; i < r->iterations && r->runs_ms; i++)
    printf("%s%.4f", i ? ", " : "", r->runs_ms[i]);
  printf("]}");
}

int cmd_bench(tsr_runtime *rt, const cli_opts *o) {
  size_t n_dev = 1;
  bool all = o->devices && !strcmp(o->devices, "all");
  if (all) n_dev = tsr_runtime_device_count(rt);
  bench_result *results = calloc(n_dev, sizeof *results);
  if (!results) return fail("out of memory");
  int rc = 0;
  for (size_t d = 0; d < n_dev && !rc; d++) {
    const char *dev = o->devices;
    tsr_device_info info = {sizeof info};
    if (all) {
      tsr_status s = tsr_runtime_device_info(rt, d, &info);
      if (s) rc = fail_status("device info", s);
      dev = info.id;
    }
    if (!rc) rc = bench_device(rt, o, dev, &results[d], o->profile_file && d == 0);
  }
  if (!rc && o->json) {
    if (all) printf("[");
    for (size_t d = 0; d < n_dev; d++) {
      if (d) printf(", ");
      print_json(&results[d]);
    }
    printf(all ? "]\n" : "\n");
  } else if (!rc) {
    printf("%-12s %6s %9s %9s %9s %9s %9s %9s %9s\n", "DEVICE", "RUNS", "LOAD_MS", "FIRST_MS",
           "MIN_MS", "MEDIAN_MS", "P90_MS", "P99_MS", "PEAK_MB");
    for (size_t d = 0; d < n_dev; d++) {
      const bench_result *r = &results[d];
      printf("%-12s %6d %9.2f %9.3f %9.3f %9.3f %9.3f %9.3f %9.1f\n", r->device, r->iterations,
             r->load_ms, r->first_ms, r->min_ms, r->median_ms, r->p90_ms, r->p99_ms,
             r->peak_rss_mb);
    }
  }
  for (size_t d = 0; d < n_dev; d++)
    free(results[d].runs_ms);
  free(results);
  return rc;
}
