/* The planner: memory reuse from lifetimes, constant folding of shape computations, the plan
 * cache per input shape, budgets, and placement errors. Models are built in C. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/model_builder.h"

static tsr_runtime *rt;

static void setup(void) { ck_assert_ok(tsr_runtime_create(NULL, &rt)); }
static void teardown(void) { tsr_runtime_destroy(rt); }

static tsr_model *load(mb_model *m) { return tsr_test_load_built(rt, m); }

static tsr_plan *plan_of(tsr_session *s) {
  tsr_plan *p = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &p));
  return p;
}

START_TEST(chain_reuses_memory) {
  /* 12 Relu/Neg nodes on 1024 floats: a chain needs two live buffers at a time, not twelve. */
  mb_model *m = mb_new(13);
  int64_t dims[] = {1, 1024};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, dims);
  char in[16] = "x", out[16];
  for (int i = 0; i < 12; i++) {
    snprintf(out, sizeof out, i == 11 ? "y" : "t%d", i);
    char name[16];
    snprintf(name, sizeof name, "n%d", i);
    mb_node(m, i % 2 ? "Neg" : "Relu", name, in, out);
    snprintf(in, sizeof in, "%s", out);
  }
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  tsr_plan *p = plan_of(s);
  uint64_t arena = tsr_plan_arena_bytes(p);
  ck_assert_msg(arena >= 2 * 4096 && arena <= 3 * 4096,
                "arena %llu bytes; expected two or three 4 KiB buffers", (unsigned long long)arena);
  ck_assert_uint_eq(tsr_plan_partition_count(p), 1);
  tsr_plan_partition_info pi = {sizeof pi};
  ck_assert_ok(tsr_plan_get_partition(p, 0, &pi));
  ck_assert_str_eq(pi.device, "cpu");
  ck_assert_uint_eq(pi.node_count, 12);
  tsr_plan_destroy(p);

  /* And the results are right: relu then alternating neg/relu. */
  float xs[1024];
  for (int i = 0; i < 1024; i++)
    xs[i] = (float)(i % 17) - 8.0f;
  tsr_tensor *x = NULL, *y = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 2, dims, xs, sizeof xs, &x));
  const char *names[] = {"x"};
  ck_assert_ok(tsr_session_run(s, NULL, 1, names, (const tsr_tensor *const *)&x, 1, NULL, &y));
  const float *yd = tsr_tensor_data(y);
  for (int i = 0; i < 1024; i++) {
    float v = xs[i];
    for (int k = 0; k < 12; k++)
      v = k % 2 ? -v : (v > 0 ? v : 0);
    ck_assert_float_eq(yd[i], v);
  }
  tsr_tensor_destroy(x);
  tsr_tensor_destroy(y);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* x[N,6] -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1? no: n, 2, 3]) -> Reshape(x) */
static tsr_model *reshape_model(void) {
  mb_model *m = mb_new(13);
  int64_t dims[] = {-1, 6};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, dims);
  int64_t zero = 0, one_dim[] = {1}, two_dims[] = {2};
  int64_t tail[] = {2, 3};
  mb_init_i64(m, "idx", 0, NULL, &zero);
  mb_init_i64(m, "axes", 1, one_dim, &zero);
  mb_init_i64(m, "tail", 1, two_dims, tail);
  mb_node(m, "Shape", "shape", "x", "s");
  mb_node(m, "Gather", "gather", "s,idx", "n");
  mb_attr_int(m, "axis", 0);
  mb_node(m, "Unsqueeze", "unsqueeze", "n,axes", "n1");
  mb_node(m, "Concat", "concat", "n1,tail", "newshape");
  mb_attr_int(m, "axis", 0);
  mb_node(m, "Reshape", "reshape", "x,newshape", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return load(m);
}

START_TEST(shape_computations_fold) {
  tsr_model *model = reshape_model();
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  tsr_plan *p = plan_of(s);
  ck_assert_uint_eq(tsr_plan_node_count(p), 5);
  for (size_t i = 0; i < 5; i++) {
    tsr_plan_node_info ni = {sizeof ni};
    ck_assert_ok(tsr_plan_get_node(p, i, &ni));
    if (!strcmp(ni.op_type, "Reshape"))
      ck_assert_str_eq(ni.device, "cpu");
    else
      ck_assert_msg(!strcmp(ni.device, "folded"), "%s (%s) was not folded: %s", ni.name, ni.op_type,
                    ni.device);
  }
  tsr_plan_destroy(p);

  /* Two batch sizes: each gets its own plan, results have the right shapes. */
  for (int64_t n = 1; n <= 3; n += 2) {
    int64_t dims[] = {n, 6};
    tsr_tensor *x = NULL, *y = NULL;
    ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 2, dims, &x));
    float *xd = tsr_tensor_data(x);
    for (int64_t i = 0; i < n * 6; i++)
      xd[i] = (float)i;
    const char *names[] = {"x"};
    ck_assert_ok(tsr_session_run(s, NULL, 1, names, (const tsr_tensor *const *)&x, 1, NULL, &y));
    ck_assert_uint_eq(tsr_tensor_rank(y), 3);
    ck_assert_int_eq(tsr_tensor_dims(y)[0], n);
    ck_assert_int_eq(tsr_tensor_dims(y)[1], 2);
    ck_assert_int_eq(tsr_tensor_dims(y)[2], 3);
    ck_assert(!memcmp(tsr_tensor_data(y), xd, (size_t)(n * 6) * sizeof(float)));
    tsr_tensor_destroy(x);
    tsr_tensor_destroy(y);
  }
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* Reshape, Unsqueeze, Squeeze, Flatten and a Transpose that moves only axes of size 1 share
 * their input's buffer on the CPU: a chain of them over a value that is still read afterwards
 * (and is a graph output itself) needs no buffer of its own, a Transpose that moves data still
 * gets one, and every value reads right. */
START_TEST(reshapes_share_their_input) {
  mb_model *m = mb_new(13);
  int64_t dims[] = {1, 1024}, two[] = {2}, one[] = {1}, zero = 0, shape[] = {32, 32};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, dims);
  mb_init_i64(m, "shape", 1, two, shape);
  mb_init_i64(m, "axes0", 1, one, &zero);
  int64_t first = 1;
  mb_init_i64(m, "axes1", 1, one, &first);
  mb_node(m, "Relu", "relu", "x", "a");
  mb_node(m, "Reshape", "reshape", "a,shape", "b");     /* [32, 32] */
  mb_node(m, "Unsqueeze", "unsqueeze", "b,axes0", "c"); /* [1, 32, 32] */
  mb_node(m, "Transpose", "transpose_unit", "c", "t");  /* [32, 1, 32]: same bytes */
  mb_attr_ints(m, "perm", 3, (int64_t[]){1, 0, 2});
  mb_node(m, "Squeeze", "squeeze", "t,axes1", "d"); /* [32, 32] */
  mb_node(m, "Flatten", "flatten", "d", "e");
  mb_attr_int(m, "axis", 1);
  mb_node(m, "Neg", "neg", "e", "y1");
  mb_node(m, "Sigmoid", "sigmoid", "a", "y2");
  mb_node(m, "Transpose", "transpose", "b", "y3"); /* a real transpose */
  mb_attr_ints(m, "perm", 2, (int64_t[]){1, 0});
  mb_output(m, "y1", TSR_DTYPE_FLOAT32);
  mb_output(m, "y2", TSR_DTYPE_FLOAT32);
  mb_output(m, "b", TSR_DTYPE_FLOAT32);
  mb_output(m, "y3", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  tsr_plan *p = plan_of(s);
  /* a (with b, c, t, d, e in it), y1, y2 and y3: four buffers, where copies would take
   * nine. */
  uint64_t arena = tsr_plan_arena_bytes(p);
  ck_assert_msg(arena <= 4 * 4096, "arena %llu bytes; expected at most four 4 KiB buffers",
                (unsigned long long)arena);
  tsr_plan_destroy(p);

  for (int round = 0; round < 2; round++) { /* the second run reuses the run context */
    float xs[1024];
    for (int i = 0; i < 1024; i++)
      xs[i] = (float)((i * 7 + round) % 23) - 11.0f;
    tsr_tensor *x = NULL, *y[4] = {NULL, NULL, NULL, NULL};
    ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 2, dims, xs, sizeof xs, &x));
    const char *names[] = {"x"}, *outs[] = {"y1", "y2", "b", "y3"};
    ck_assert_ok(tsr_session_run(s, NULL, 1, names, (const tsr_tensor *const *)&x, 4, outs, y));
    ck_assert_uint_eq(tsr_tensor_rank(y[0]), 2);
    ck_assert_int_eq(tsr_tensor_dims(y[0])[0], 32);
    ck_assert_uint_eq(tsr_tensor_rank(y[2]), 2);
    ck_assert_int_eq(tsr_tensor_dims(y[2])[1], 32);
    const float *y1 = tsr_tensor_data(y[0]), *y2 = tsr_tensor_data(y[1]);
    const float *b = tsr_tensor_data(y[2]), *y3 = tsr_tensor_data(y[3]);
    for (int i = 0; i < 1024; i++) {
      float a = xs[i] > 0 ? xs[i] : 0;
      ck_assert_float_eq(y1[i], -a);
      ck_assert_float_eq(b[i], a);
      ck_assert_float_eq_tol(y2[i], 1.0f / (1.0f + expf(-a)), 1e-6f);
      ck_assert_float_eq(y3[(i % 32) * 32 + i / 32], a);
    }
    tsr_tensor_destroy(x);
    for (int k = 0; k < 4; k++)
      tsr_tensor_destroy(y[k]);
  }
  tsr_session_destroy(s);
  tsr_model_destroy(model);

  /* The unit Transpose alone: a and y (= a + a) in two buffers, not three. */
  m = mb_new(13);
  int64_t d3[] = {1, 1, 1024};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, d3);
  mb_node(m, "Relu", "relu", "x", "a");
  mb_node(m, "Transpose", "transpose_unit", "a", "t");
  mb_attr_ints(m, "perm", 3, (int64_t[]){1, 0, 2});
  mb_node(m, "Add", "add", "t,a", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  model = load(m);
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  p = plan_of(s);
  arena = tsr_plan_arena_bytes(p);
  ck_assert_msg(arena <= 2 * 4096, "arena %llu bytes; expected two 4 KiB buffers",
                (unsigned long long)arena);
  tsr_plan_destroy(p);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

START_TEST(budget_is_enforced) {
  mb_model *m = mb_new(13);
  int64_t dims[] = {1, 4096};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, dims);
  mb_node(m, "Relu", "r1", "x", "a");
  mb_node(m, "Relu", "r2", "a", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session_options so = {sizeof so};
  so.memory_budgets = "cpu=1K";
  tsr_session *s = NULL;
  tsr_test_expect_error(tsr_session_create(rt, model, &so, &s), TSR_STATUS_OUT_OF_MEMORY, "budget");
  ck_assert_ptr_null(s);
  so.memory_budgets = "cpu=1M";
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  tsr_session_destroy(s);
  so.memory_budgets = "cpu=lots";
  tsr_test_expect_error(tsr_session_create(rt, model, &so, &s), TSR_STATUS_INVALID_ARGUMENT,
                        "DEVICE=SIZE");
  so.memory_budgets = "gpu9=1M";
  tsr_test_expect_error(tsr_session_create(rt, model, &so, &s), TSR_STATUS_NOT_FOUND, "gpu9");
  tsr_model_destroy(model);
}
END_TEST

START_TEST(unknown_op_and_device_are_clear_errors) {
  mb_model *m = mb_new(13);
  int64_t dims[] = {2};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, dims);
  mb_node(m, "FrobnicateOp", "frob_1", "x", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  tsr_test_expect_error(tsr_session_create(rt, model, NULL, &s), TSR_STATUS_UNSUPPORTED, "frob_1");
  tsr_model_destroy(model);

  m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, dims);
  mb_node(m, "Relu", "r", "x", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  model = load(m);
  tsr_session_options so = {sizeof so};
  so.devices = "warp-drive";
  tsr_test_expect_error(tsr_session_create(rt, model, &so, &s), TSR_STATUS_NOT_FOUND, "warp-drive");
  so.devices = "cpu";
  so.strict = 1;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

START_TEST(broadcast_mismatch_names_the_node) {
  mb_model *m = mb_new(13);
  int64_t a[] = {2, 3}, b[] = {4};
  mb_input(m, "a", TSR_DTYPE_FLOAT32, 2, a);
  mb_input(m, "b", TSR_DTYPE_FLOAT32, 1, b);
  mb_node(m, "Add", "add_1", "a,b", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  tsr_test_expect_error(tsr_session_create(rt, model, NULL, &s), TSR_STATUS_INVALID_ARGUMENT,
                        "add_1");
  tsr_model_destroy(model);
}
END_TEST

int main(void) {
  Suite *s = suite_create("planner");
  TCase *tc = tcase_create("plans");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, chain_reuses_memory);
  tcase_add_test(tc, shape_computations_fold);
  tcase_add_test(tc, reshapes_share_their_input);
  tcase_add_test(tc, budget_is_enforced);
  tcase_add_test(tc, unknown_op_and_device_are_clear_errors);
  tcase_add_test(tc, broadcast_mismatch_names_the_node);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
