/* A minimal host program that embeds Tessera through tessera.h alone.
 *
 *   embed MODEL.onnx [INPUT.npy EXPECTED.npy]
 *
 * It loads the model, makes one session, and runs it from two threads at once, several times
 * each. With INPUT and EXPECTED (a one-input, one-output model), every result must match
 * EXPECTED within 1e-4; without them, inputs are filled with a fixed pattern and every result
 * must equal the first run's bit for bit. Exit status 0 means all results checked out. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/tessera.h"

#define RUNS_PER_THREAD 8

typedef struct job {
  tsr_session *session;
  size_t n_inputs;
  const char **names;
  tsr_tensor **inputs;
  tsr_tensor *expected;   /* first output to compare with */
  int exact;
  int failures;
} job;

static int check_status(tsr_status s, const char *what) {
  if (!s) return 0;
  fprintf(stderr, "embed: %s: %s\n", what, tsr_status_message(s));
  tsr_status_free(s);
  return 1;
}

static int same(tsr_tensor *a, tsr_tensor *b, int exact) {
  if (tsr_tensor_byte_size(a) != tsr_tensor_byte_size(b) ||
      tsr_tensor_dtype(a) != tsr_tensor_dtype(b))
    return 0;
  if (exact || tsr_tensor_dtype(a) != TSR_DTYPE_FLOAT32)
    return memcmp(tsr_tensor_data(a), tsr_tensor_data(b), tsr_tensor_byte_size(a)) == 0;
  const float *x = tsr_tensor_data(a), *y = tsr_tensor_data(b);
  for (size_t i = 0; i < tsr_tensor_element_count(a); i++)
    if (fabsf(x[i] - y[i]) > 1e-4f * (1.0f + fabsf(y[i]))) return 0;
  return 1;
}

static void *worker(void *arg) {
  job *j = arg;
  for (int r = 0; r < RUNS_PER_THREAD; r++) {
    tsr_tensor *out = NULL;
    tsr_status s = tsr_session_run(j->session, NULL, j->n_inputs, j->names,
                                   (const tsr_tensor *const *)j->inputs, 1, NULL, &out);
    if (check_status(s, "run") || !same(out, j->expected, j->exact)) j->failures++;
    tsr_tensor_destroy(out);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: embed MODEL.onnx [INPUT.npy EXPECTED.npy]\n");
    return 2;
  }
  tsr_runtime *rt = NULL;
  tsr_model *model = NULL;
  tsr_session *session = NULL;
  int rc = 1;
  if (check_status(tsr_runtime_create(NULL, &rt), "runtime") ||
      check_status(tsr_model_load_file(rt, argv[1], &model), "model") ||
      check_status(tsr_session_create(rt, model, NULL, &session), "session"))
    goto out;

  size_t n = tsr_model_input_count(model);
  const char **names = calloc(n + 1, sizeof *names);
  tsr_tensor **inputs = calloc(n + 1, sizeof *inputs);
  tsr_tensor *expected = NULL;
  int exact = argc == 2;
  for (size_t i = 0; i < n; i++) {
    tsr_value_info info = {sizeof info};
    if (check_status(tsr_model_input_info(model, i, &info), "input info")) goto free_inputs;
    names[i] = info.name;
    if (argc == 4) {
      if (check_status(tsr_tensor_load_file(rt, argv[2], &inputs[i]), "input file")) goto free_inputs;
      continue;
    }
    int64_t dims[16];
    for (int64_t d = 0; d < info.rank && d < 16; d++) dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
    if (check_status(tsr_tensor_create(rt, info.dtype, (size_t)info.rank, dims, &inputs[i]),
                     "input tensor"))
      goto free_inputs;
    if (info.dtype == TSR_DTYPE_FLOAT32) {
      float *p = tsr_tensor_data(inputs[i]);
      for (size_t k = 0; k < tsr_tensor_element_count(inputs[i]); k++)
        p[k] = (float)((k * 7919) % 113) / 113.0f - 0.5f;
    }
  }
  if (argc == 4) {
    if (check_status(tsr_tensor_load_file(rt, argv[3], &expected), "expected file")) goto free_inputs;
  } else if (check_status(tsr_session_run(session, NULL, n, names,
                                          (const tsr_tensor *const *)inputs, 1, NULL, &expected),
                          "first run")) {
    goto free_inputs;
  }

  job jobs[2];
  pthread_t threads[2];
  for (int t = 0; t < 2; t++) {
    jobs[t] = (job){session, n, names, inputs, expected, exact, 0};
    pthread_create(&threads[t], NULL, worker, &jobs[t]);
  }
  for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
  int failures = jobs[0].failures + jobs[1].failures;
  printf("embed: %d runs on 2 threads, %d mismatches\n", 2 * RUNS_PER_THREAD, failures);
  rc = failures ? 1 : 0;

free_inputs:
  tsr_tensor_destroy(expected);
  for (size_t i = 0; i < n; i++) tsr_tensor_destroy(inputs[i]);
  free(inputs);
  free(names);
out:
  tsr_session_destroy(session);
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);
  return rc;
}
