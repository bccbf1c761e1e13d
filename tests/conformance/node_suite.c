/* Runs the ONNX backend node test suite against every device, through the public API only.
 *
 *   node_suite SUITE_DIR LISTS_DIR [--device ID]... [--filter TEXT] [--verbose]
 *
 * SUITE_DIR holds one folder per test (model.onnx, test_data_set_N/input_K.pb, output_K.pb).
 * LISTS_DIR holds excluded.txt (tests outside the inference set, with reasons) and, per plugin,
 * <plugin>.unsupported (permanent) and <plugin>.xfail (temporary), one "name  reason" a line.
 * A listed test that passes is a failure, until the list is updated; so is an unlisted test
 * that fails. The last line is "N passed, N failed, N skipped". Sessions are strict, so a
 * device is measured on what it runs itself. Tolerances per dtype are in compare(). */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tessera/tessera.h"

typedef struct entry {
  char *name;
  char *reason;
  bool seen_pass;
} entry;

typedef struct list {
  entry *items;
  size_t n;
} list;

static void list_load(list *l, const char *path) {
  memset(l, 0, sizeof *l);
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#') continue;
    char *end = p + strcspn(p, " \t");
    char *reason = *end ? end + 1 : end;
    *end = '\0';
    while (*reason == ' ' || *reason == '\t') reason++;
    l->items = realloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n].name = strdup(p);
    l->items[l->n].reason = strdup(reason);
    l->items[l->n].seen_pass = false;
    l->n++;
  }
  fclose(f);
}

static void list_free(list *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].name);
    free(l->items[i].reason);
  }
  free(l->items);
}

/* Names may end in '*' to match a prefix. */
static entry *list_find(const list *l, const char *name) {
  for (size_t i = 0; i < l->n; i++) {
    const char *pat = l->items[i].name;
    size_t len = strlen(pat);
    if (len && pat[len - 1] == '*' ? strncmp(pat, name, len - 1) == 0 : strcmp(pat, name) == 0)
      return &l->items[i];
  }
  return NULL;
}

static double value_at(tsr_tensor *t, size_t i) {
  const void *p = tsr_tensor_data(t);
  switch (tsr_tensor_dtype(t)) {
  case TSR_DTYPE_FLOAT32: return ((const float *)p)[i];
  case TSR_DTYPE_FLOAT64: return ((const double *)p)[i];
  case TSR_DTYPE_FLOAT16: {
    uint16_t h = ((const uint16_t *)p)[i];
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
  }
  case TSR_DTYPE_BFLOAT16: {
    uint32_t bits = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
  }
  case TSR_DTYPE_INT8: return ((const int8_t *)p)[i];
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_BOOL: return ((const uint8_t *)p)[i];
  case TSR_DTYPE_INT16: return ((const int16_t *)p)[i];
  case TSR_DTYPE_UINT16: return ((const uint16_t *)p)[i];
  case TSR_DTYPE_INT32: return ((const int32_t *)p)[i];
  case TSR_DTYPE_UINT32: return ((const uint32_t *)p)[i];
  case TSR_DTYPE_INT64: return (double)((const int64_t *)p)[i];
  case TSR_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
  default: return 0;
  }
}

/* Tolerances, in one place: floats within rtol/atol as the ONNX backend tests use (looser for
 * 16-bit floats), integers and bools exact. */
static bool compare(tsr_tensor *got, tsr_tensor *want, char *why, size_t size) {
  /* onnx 1.12 writes bfloat16 test data as uint16 tensors of the same bits. */
  if (tsr_tensor_dtype(got) == TSR_DTYPE_BFLOAT16 && tsr_tensor_dtype(want) == TSR_DTYPE_UINT16 &&
      tsr_tensor_byte_size(got) == tsr_tensor_byte_size(want)) {
    if (memcmp(tsr_tensor_data(got), tsr_tensor_data(want), tsr_tensor_byte_size(got)) == 0)
      return true;
    snprintf(why, size, "bfloat16 bits differ");
    return false;
  }
  if (tsr_tensor_dtype(got) != tsr_tensor_dtype(want)) {
    snprintf(why, size, "dtype %s, expected %s", tsr_dtype_name(tsr_tensor_dtype(got)),
             tsr_dtype_name(tsr_tensor_dtype(want)));
    return false;
  }
  size_t rank = tsr_tensor_rank(got);
  if (rank != tsr_tensor_rank(want) ||
      (rank && memcmp(tsr_tensor_dims(got), tsr_tensor_dims(want), rank * sizeof(int64_t)))) {
    snprintf(why, size, "shape mismatch (rank %zu vs %zu)", rank, tsr_tensor_rank(want));
    return false;
  }
  tsr_dtype dt = tsr_tensor_dtype(got);
  bool is_float = dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
                  dt == TSR_DTYPE_BFLOAT16;
  double rtol = dt == TSR_DTYPE_FLOAT16 || dt == TSR_DTYPE_BFLOAT16 ? 1e-2 : 1e-3;
  double atol = dt == TSR_DTYPE_FLOAT16 || dt == TSR_DTYPE_BFLOAT16 ? 1e-3 : 1e-5;
  if (dt == TSR_DTYPE_INT64 || dt == TSR_DTYPE_UINT64) {
    if (memcmp(tsr_tensor_data(got), tsr_tensor_data(want), tsr_tensor_byte_size(got)) != 0) {
      snprintf(why, size, "64-bit integer values differ");
      return false;
    }
    return true;
  }
  for (size_t i = 0; i < tsr_tensor_element_count(got); i++) {
    double a = value_at(got, i), b = value_at(want, i);
    if (isnan(a) && isnan(b)) continue;
    bool ok = is_float ? (a == b || fabs(a - b) <= atol + rtol * fabs(b)) : a == b;
    if (!ok) {
      snprintf(why, size, "element %zu is %.9g, expected %.9g", i, a, b);
      return false;
    }
  }
  return true;
}

typedef enum outcome { OUT_PASS, OUT_FAIL, OUT_ERROR } outcome;

static outcome run_case(tsr_runtime *rt, const char *dir, const char *device, char *why,
                        size_t why_size) {
  char path[4096 + 64]; /* dir is at most 4096 bytes, plus a file name */
  tsr_model *model = NULL;
  tsr_session *session = NULL;
  outcome res = OUT_ERROR;
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  tsr_status s = tsr_model_load_file(rt, path, &model);
  size_t n_in = 0, n_out = 0;
  tsr_tensor **inputs = NULL, **outputs = NULL, **expected = NULL;
  const char **names = NULL;
  if (!s) {
    tsr_session_options so = {sizeof so};
    so.devices = device;
    so.strict = 1;
    so.threads = 1;
    s = tsr_session_create(rt, model, &so, &session);
  }
  if (!s) {
    n_in = tsr_model_input_count(model);
    n_out = tsr_model_output_count(model);
    inputs = calloc(n_in + 1, sizeof *inputs);
    names = calloc(n_in + 1, sizeof *names);
    outputs = calloc(n_out + 1, sizeof *outputs);
    expected = calloc(n_out + 1, sizeof *expected);
    for (size_t i = 0; i < n_in && !s; i++) {
      tsr_value_info info = {sizeof info};
      s = tsr_model_input_info(model, i, &info);
      names[i] = info.name;
      snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, i);
      if (!s) s = tsr_tensor_load_file(rt, path, &inputs[i]);
      if (!s && info.dtype == TSR_DTYPE_BFLOAT16 && tsr_tensor_dtype(inputs[i]) == TSR_DTYPE_UINT16) {
        /* onnx 1.12 writes bfloat16 test data as uint16 tensors of the same bits. */
        tsr_tensor *bf = NULL;
        s = tsr_tensor_create_copy(rt, TSR_DTYPE_BFLOAT16, tsr_tensor_rank(inputs[i]),
                                   tsr_tensor_dims(inputs[i]), tsr_tensor_data(inputs[i]),
                                   tsr_tensor_byte_size(inputs[i]), &bf);
        tsr_tensor_destroy(inputs[i]);
        inputs[i] = bf;
      }
    }
    for (size_t i = 0; i < n_out && !s; i++) {
      snprintf(path, sizeof path, "%s/test_data_set_0/output_%zu.pb", dir, i);
      s = tsr_tensor_load_file(rt, path, &expected[i]);
    }
  }
  if (!s)
    s = tsr_session_run(session, NULL, n_in, names, (const tsr_tensor *const *)inputs, n_out, NULL,
                        outputs);
  if (s) {
    snprintf(why, why_size, "%s", tsr_status_message(s));
    tsr_status_free(s);
  } else {
    res = OUT_PASS;
    for (size_t i = 0; i < n_out && res == OUT_PASS; i++) {
      char w[512];
      if (!compare(outputs[i], expected[i], w, sizeof w)) {
        snprintf(why, why_size, "output %zu: %s", i, w);
        res = OUT_FAIL;
      }
    }
  }
  for (size_t i = 0; i < n_in && inputs; i++) tsr_tensor_destroy(inputs[i]);
  for (size_t i = 0; i < n_out && outputs; i++) {
    tsr_tensor_destroy(outputs[i]);
    tsr_tensor_destroy(expected[i]);
  }
  free(inputs);
  free(outputs);
  free(expected);
  free(names);
  tsr_session_destroy(session);
  tsr_model_destroy(model);
  return res;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: node_suite SUITE_DIR LISTS_DIR [--device ID]... [--filter TEXT] [--verbose]\n");
    return 2;
  }
  const char *suite = argv[1], *lists = argv[2], *filter = NULL;
  const char *devices[16];
  size_t n_devices = 0;
  bool verbose = false;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc && n_devices < 16) devices[n_devices++] = argv[++i];
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!strcmp(argv[i], "--verbose")) verbose = true;
    else {
      fprintf(stderr, "node_suite: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  tsr_runtime *rt = NULL;
  tsr_status s = tsr_runtime_create(NULL, &rt);
  if (s) {
    fprintf(stderr, "node_suite: %s\n", tsr_status_message(s));
    return 1;
  }
  if (!n_devices)
    for (size_t d = 0; d < tsr_runtime_device_count(rt) && d < 16; d++) {
      tsr_device_info info = {sizeof info};
      if (!tsr_runtime_device_info(rt, d, &info)) devices[n_devices++] = info.id;
    }

  DIR *dir = opendir(suite);
  if (!dir) {
    fprintf(stderr, "node_suite: cannot open suite folder '%s'\n", suite);
    return 1;
  }
  char **tests = NULL;
  size_t n_tests = 0;
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (strncmp(e->d_name, "test_", 5) != 0) continue;
    if (filter && !strstr(e->d_name, filter)) continue;
    tests = realloc(tests, (n_tests + 1) * sizeof *tests);
    tests[n_tests++] = strdup(e->d_name);
  }
  closedir(dir);
  qsort(tests, n_tests, sizeof *tests, cmp_str);

  char path[4096];
  list excluded;
  snprintf(path, sizeof path, "%s/excluded.txt", lists);
  list_load(&excluded, path);
  size_t total_pass = 0, total_fail = 0, total_skip = 0;
  for (size_t d = 0; d < n_devices; d++) {
    tsr_device_info info = {sizeof info};
    const char *plugin = devices[d];
    for (size_t k = 0; k < tsr_runtime_device_count(rt); k++)
      if (!tsr_runtime_device_info(rt, k, &info) && !strcmp(info.id, devices[d])) plugin = info.plugin;
    list unsupported, xfail;
    snprintf(path, sizeof path, "%s/%s.unsupported", lists, plugin);
    list_load(&unsupported, path);
    snprintf(path, sizeof path, "%s/%s.xfail", lists, plugin);
    list_load(&xfail, path);
    size_t pass = 0, fail = 0, expected_fail = 0, skipped = 0, counted = 0;
    for (size_t t = 0; t < n_tests; t++) {
      if (list_find(&excluded, tests[t])) {
        skipped++;
        continue;
      }
      counted++;
      entry *listed = list_find(&unsupported, tests[t]);
      if (!listed) listed = list_find(&xfail, tests[t]);
      char why[2048] = "";
      snprintf(path, sizeof path, "%s/%s", suite, tests[t]);
      outcome r = run_case(rt, path, devices[d], why, sizeof why);
      if (r == OUT_PASS && !listed) {
        pass++;
        if (verbose) printf("PASS %s %s\n", devices[d], tests[t]);
      } else if (r == OUT_PASS && listed) {
        fail++;
        printf("UNEXPECTED PASS %s %s: listed as '%s'; remove it from the list\n", devices[d],
               tests[t], listed->reason);
      } else if (listed) {
        expected_fail++;
        if (verbose) printf("XFAIL %s %s: %s\n", devices[d], tests[t], why);
      } else {
        fail++;
        printf("%s %s %s: %s\n", r == OUT_FAIL ? "FAIL" : "ERROR", devices[d], tests[t], why);
      }
    }
    printf("device %s: %zu of %zu inference tests pass (%.1f%%); %zu listed as unsupported or "
           "expected to fail; %zu unexpected outcomes; %zu outside the inference set\n",
           devices[d], pass, counted, counted ? 100.0 * (double)pass / (double)counted : 0.0,
           expected_fail, fail, skipped);
    total_pass += pass;
    total_fail += fail;
    total_skip += skipped + expected_fail;
    list_free(&unsupported);
    list_free(&xfail);
  }
  list_free(&excluded);
  for (size_t t = 0; t < n_tests; t++) free(tests[t]);
  free(tests);
  tsr_runtime_destroy(rt);
  printf("%zu passed, %zu failed, %zu skipped\n", total_pass, total_fail, total_skip);
  return total_fail ? 1 : 0;
}
