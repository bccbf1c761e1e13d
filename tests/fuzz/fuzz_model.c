/* libFuzzer target: arbitrary bytes as an ONNX model, through load, session creation (shape
 * inference, constant folding, planning, compilation) and one run with zero-filled inputs.
 * Build with -Dfuzz=enabled and CC=clang-14; run e.g.
 *   build-fuzz/tests/fuzz/fuzz_model -max_total_time=300 -rss_limit_mb=2048 CORPUS_DIR
 * Anything but a clean status is a bug: a crash, a leak, a sanitizer report, a hang. */
#include <stdint.h>
#include <stdlib.h>

#include "tessera/tessera.h"

static tsr_runtime *runtime(void) {
  static tsr_runtime *rt;
  if (!rt) {
    tsr_runtime_options ro = {sizeof ro, NULL, 0, 0};
    if (tsr_runtime_create(&ro, &rt)) abort();
  }
  return rt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tsr_runtime *rt = runtime();
  tsr_model *model = NULL;
  tsr_session *session = NULL;
  tsr_status s = tsr_model_load_memory(rt, data, size, NULL, &model);
  if (!s) {
    tsr_session_options so = {sizeof so};
    so.threads = 1;
    so.memory_budgets = "cpu=64M"; /* fuzzed shapes must not exhaust the machine */
    s = tsr_session_create(rt, model, &so, &session);
  }
  size_t n = model ? tsr_model_input_count(model) : 0;
  tsr_tensor **inputs = calloc(n + 1, sizeof *inputs);
  const char **names = calloc(n + 1, sizeof *names);
  size_t total = 0;
  for (size_t i = 0; !s && i < n; i++) {
    tsr_value_info info = {sizeof info};
    s = tsr_model_input_info(model, i, &info);
    if (s || info.rank < 0 || info.rank > 8) break;
    int64_t dims[8];
    size_t count = 1;
    for (int64_t d = 0; d < info.rank; d++) {
      dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
      count *= (size_t)(dims[d] ? dims[d] : 1);
    }
    total += count;
    if (total > (1u << 20)) break; /* keep each input small */
    names[i] = info.name;
    s = tsr_tensor_create(rt, info.dtype, (size_t)info.rank, dims, &inputs[i]);
  }
  if (!s && session && n && names[n - 1]) {
    size_t n_out = tsr_model_output_count(model);
    tsr_tensor **outputs = calloc(n_out + 1, sizeof *outputs);
    s = tsr_session_run(session, NULL, n, names, (const tsr_tensor *const *)inputs, n_out, NULL,
                        outputs);
    for (size_t i = 0; i < n_out; i++) tsr_tensor_destroy(outputs[i]);
    free(outputs);
  }
  tsr_status_free(s);
  for (size_t i = 0; i < n; i++) tsr_tensor_destroy(inputs[i]);
  free(inputs);
  free(names);
  tsr_session_destroy(session);
  tsr_model_destroy(model);
  return 0;
}
