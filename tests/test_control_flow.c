/* Control flow run by the host (scheduler/control_flow.c): If with a run-time condition whose
 * branches read outer values, Loop with a trip count, a condition and a scan output, Scan in
 * reverse, and the errors bad models get. Models are built in C; the inputs are big enough
 * (over 64 elements) that the session does not fold them into constants by value. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/model_builder.h"

static tsr_runtime *rt;

static void setup(void) { ck_assert_ok(tsr_runtime_create(NULL, &rt)); }
static void teardown(void) { tsr_runtime_destroy(rt); }

#define N 100 /* elements of x */

static tsr_model *load(mb_model *m) { return tsr_test_load_built(rt, m); }

static float xs_at(int i) { return (float)((i * 7) % 13) - 5.0f; }

static tsr_tensor *x_tensor(void) {
  float xs[N];
  for (int i = 0; i < N; i++)
    xs[i] = xs_at(i);
  tsr_tensor *t = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 1, (int64_t[]){N}, xs, sizeof xs, &t));
  return t;
}

static tsr_tensor *scalar(tsr_dtype dtype, const void *v, size_t size) {
  tsr_tensor *t = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, dtype, 0, NULL, v, size, &t));
  return t;
}

/* Runs s with x and, when extra_name is set, one more input; *out gets output 0 (and 1). */
static tsr_status run2(tsr_session *s, const char *extra_name, tsr_tensor *extra, size_t n_out,
                       tsr_tensor **out) {
  tsr_tensor *x = x_tensor();
  const char *names[2] = {"x", extra_name};
  const tsr_tensor *ins[2] = {x, extra};
  tsr_status st = tsr_session_run(s, NULL, extra ? 2 : 1, names, ins, n_out, NULL, out);
  tsr_tensor_destroy(x);
  return st;
}

/* ---- If -------------------------------------------------------------------------------- */

/* y = Neg(If(cond, then: x + w, else: r * r)) with r = Relu(x) made in the main graph and w
 * an initializer: both branches read outer values, one a weight and one an activation. */
static tsr_model *if_model(void) {
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
  mb_input(m, "cond", TSR_DTYPE_BOOL, 0, NULL);
  float w[N];
  for (int i = 0; i < N; i++)
    w[i] = (float)i;
  mb_init_f32(m, "w", 1, (int64_t[]){N}, w);
  mb_node(m, "Relu", "relu", "x", "r");
  mb_node(m, "If", "the_if", "cond", "t");
  mb_model *then_b = mb_new(13);
  mb_node(then_b, "Add", "then_add", "x,w", "then_out");
  mb_output(then_b, "then_out", TSR_DTYPE_FLOAT32);
  mb_model *else_b = mb_new(13);
  mb_node(else_b, "Mul", "else_mul", "r,r", "else_out");
  mb_output(else_b, "else_out", TSR_DTYPE_FLOAT32);
  mb_attr_graph(m, "then_branch", then_b);
  mb_attr_graph(m, "else_branch", else_b);
  mb_node(m, "Neg", "neg", "t", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return load(m);
}

START_TEST(if_reads_outer_values) {
  tsr_model *model = if_model();
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  for (int b = 0; b < 2; b++) {
    uint8_t c = b == 0;
    tsr_tensor *cond = scalar(TSR_DTYPE_BOOL, &c, 1), *y = NULL;
    ck_assert_ok(run2(s, "cond", cond, 1, &y));
    ck_assert_uint_eq(tsr_tensor_rank(y), 1);
    const float *yd = tsr_tensor_data(y);
    for (int i = 0; i < N; i++) {
      float x = xs_at(i), r = x > 0 ? x : 0;
      ck_assert_float_eq(yd[i], c ? -(x + (float)i) : -(r * r));
    }
    tsr_tensor_destroy(cond);
    tsr_tensor_destroy(y);
  }
  /* The plan: Relu, then the If on the host in a partition of its own, then Neg. */
  tsr_plan *p = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &p));
  ck_assert_uint_eq(tsr_plan_partition_count(p), 3);
  tsr_plan_destroy(p);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* Branches that disagree: in dtype (always an error), or in shape with a condition computed
 * from activations (only known at run time). */
START_TEST(if_branch_mismatch) {
  for (int kind = 0; kind < 2; kind++) {
    mb_model *m = mb_new(13);
    mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
    mb_node(m, "ReduceSum", "sum", "x", "total");
    mb_attr_int(m, "keepdims", 0);
    mb_init_f32(m, "zero", 0, NULL, (float[]){0});
    mb_node(m, "Greater", "positive", "total,zero", "cond");
    mb_node(m, "If", "the_if", "cond", "y");
    mb_model *then_b = mb_new(13);
    mb_node(then_b, "Relu", "then_relu", "x", "then_out");
    mb_output(then_b, "then_out", TSR_DTYPE_FLOAT32);
    mb_model *else_b = mb_new(13);
    if (kind == 0) {
      mb_node(else_b, "Shape", "else_shape", "x", "else_out");
      mb_output(else_b, "else_out", TSR_DTYPE_INT64);
    } else {
      mb_node(else_b, "Unsqueeze", "else_unsq", "x,zero_axis", "else_out");
      mb_init_i64(else_b, "zero_axis", 1, (int64_t[]){1}, (int64_t[]){0});
      mb_output(else_b, "else_out", TSR_DTYPE_FLOAT32);
    }
    mb_attr_graph(m, "then_branch", then_b);
    mb_attr_graph(m, "else_branch", else_b);
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    tsr_model *model = load(m);
    tsr_session *s = NULL;
    if (kind == 0) {
      tsr_test_expect_error(tsr_session_create(rt, model, NULL, &s), TSR_STATUS_INVALID_MODEL,
                            "node 'the_if' (If): output 0 'y' is float32 in then_branch but "
                            "int64 in else_branch");
    } else {
      /* Planning waits for the first run, which cannot know the shape either. */
      ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
      tsr_tensor *y = NULL;
      tsr_test_expect_error(run2(s, NULL, NULL, 1, &y), TSR_STATUS_UNSUPPORTED,
                            "node 'the_if' (If): output 0 'y' has shape [100] in then_branch and "
                            "[1,100] in else_branch, so it depends on condition 'cond'");
      ck_assert_ptr_null(y);
    }
    tsr_session_destroy(s);
    tsr_model_destroy(model);
  }
}
END_TEST

/* ---- Loop ------------------------------------------------------------------------------ */

/* acc starts at Relu(x); each iteration i adds x (an outer value) and emits acc * i as a scan
 * output. M is the initializer m_value (when >= 0) or the graph input "m". Without with_stop
 * there is no condition input (a for loop); with it the first condition is computed from x and
 * the body's turns false after iteration 2. */
static mb_model *loop_builder(int64_t m_value, bool with_scan, bool with_stop, int body_outputs) {
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
  if (m_value >= 0)
    mb_init_i64(m, "m", 0, NULL, &m_value);
  else
    mb_input(m, "m", TSR_DTYPE_INT64, 0, NULL);
  mb_node(m, "Relu", "relu", "x", "acc0");
  if (with_stop) {
    /* A first condition made from activations: true for these x, but only known when run. */
    mb_init_f32(m, "zero", 0, NULL, (float[]){0});
    mb_node(m, "ReduceSum", "sum", "x", "total");
    mb_attr_int(m, "keepdims", 0);
    mb_node(m, "Greater", "go", "total,zero", "c0");
  }
  mb_node(m, "Loop", "the_loop", with_stop ? "m,c0,acc0" : "m,,acc0",
          with_scan ? "acc,scan" : "acc");
  mb_model *b = mb_new(13);
  mb_input(b, "i", TSR_DTYPE_INT64, 0, NULL);
  mb_input(b, "c_in", TSR_DTYPE_BOOL, 0, NULL);
  mb_input(b, "acc_in", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
  mb_node(b, "Add", "body_add", "acc_in,x", "acc_out");
  if (with_stop) {
    mb_init_i64(b, "stop", 0, NULL, (int64_t[]){2});
    mb_node(b, "Less", "body_less", "i,stop", "c_out");
  } else {
    mb_node(b, "Identity", "body_cond", "c_in", "c_out");
  }
  mb_node(b, "Cast", "body_cast", "i", "i_f");
  mb_attr_int(b, "to", TSR_DTYPE_FLOAT32);
  mb_node(b, "Mul", "body_mul", "acc_out,i_f", "scan_out");
  mb_output(b, "c_out", TSR_DTYPE_BOOL);
  mb_output(b, "acc_out", TSR_DTYPE_FLOAT32);
  if (body_outputs == 3)
    mb_output(b, "scan_out", TSR_DTYPE_FLOAT32);
  mb_attr_graph(m, "body", b);
  mb_output(m, "acc", TSR_DTYPE_FLOAT32);
  if (with_scan)
    mb_output(m, "scan", TSR_DTYPE_FLOAT32);
  return m;
}

static tsr_model *loop_model(int64_t m_value, bool with_scan, bool with_stop, int body_outputs) {
  return load(loop_builder(m_value, with_scan, with_stop, body_outputs));
}

START_TEST(loop_trip_count_and_scan_output) {
  tsr_model *model = loop_model(4, true, false, 3);
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  tsr_tensor *out[2] = {NULL, NULL};
  ck_assert_ok(run2(s, NULL, NULL, 2, out));
  ck_assert_uint_eq(tsr_tensor_rank(out[1]), 2);
  ck_assert_int_eq(tsr_tensor_dims(out[1])[0], 4);
  ck_assert_int_eq(tsr_tensor_dims(out[1])[1], N);
  const float *acc = tsr_tensor_data(out[0]), *scan = tsr_tensor_data(out[1]);
  for (int i = 0; i < N; i++) {
    float x = xs_at(i), r = x > 0 ? x : 0;
    ck_assert_float_eq_tol(acc[i], r + 4 * x, 1e-5f);
    for (int k = 0; k < 4; k++)
      ck_assert_float_eq_tol(scan[k * N + i], (r + (float)(k + 1) * x) * (float)k, 1e-4f);
  }
  tsr_tensor_destroy(out[0]);
  tsr_tensor_destroy(out[1]);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* A condition input with a body that stops the loop early; the trip count is an input. */
START_TEST(loop_condition_stops_early) {
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
  mb_input(m, "m", TSR_DTYPE_INT64, 0, NULL);
  mb_init_f32(m, "dummy", 0, NULL, (float[]){0});
  mb_node(m, "Relu", "relu", "x", "acc0");
  mb_node(m, "ReduceSum", "sum", "x", "total");
  mb_attr_int(m, "keepdims", 0);
  mb_node(m, "Greater", "go", "total,dummy", "c0"); /* true for these x */
  mb_node(m, "Loop", "the_loop", "m,c0,acc0", "acc");
  mb_model *b = mb_new(13);
  mb_input(b, "i", TSR_DTYPE_INT64, 0, NULL);
  mb_input(b, "c_in", TSR_DTYPE_BOOL, 0, NULL);
  mb_input(b, "acc_in", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
  mb_node(b, "Add", "body_add", "acc_in,x", "acc_out");
  mb_init_i64(b, "stop", 0, NULL, (int64_t[]){2});
  mb_node(b, "Less", "body_less", "i,stop", "c_out");
  mb_output(b, "c_out", TSR_DTYPE_BOOL);
  mb_output(b, "acc_out", TSR_DTYPE_FLOAT32);
  mb_attr_graph(m, "body", b);
  mb_output(m, "acc", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  float sum = 0;
  for (int i = 0; i < N; i++)
    sum += xs_at(i);
  ck_assert_float_gt(sum, 0);
  int64_t trips[] = {10, 1, 0};
  int want[] = {3, 1, 0}; /* iterations 0, 1, 2 run; the third returns false */
  for (int t = 0; t < 3; t++) {
    tsr_tensor *mt = scalar(TSR_DTYPE_INT64, &trips[t], 8), *acc = NULL;
    ck_assert_ok(run2(s, "m", mt, 1, &acc));
    const float *ad = tsr_tensor_data(acc);
    for (int i = 0; i < N; i++) {
      float x = xs_at(i), r = x > 0 ? x : 0;
      ck_assert_float_eq_tol(ad[i], r + (float)want[t] * x, 1e-5f);
    }
    tsr_tensor_destroy(mt);
    tsr_tensor_destroy(acc);
  }
  /* A negative trip count is refused by name when the loop runs. */
  int64_t neg = -3;
  tsr_tensor *mt = scalar(TSR_DTYPE_INT64, &neg, 8), *acc = NULL;
  tsr_test_expect_error(run2(s, "m", mt, 1, &acc), TSR_STATUS_INVALID_ARGUMENT,
                        "node 'the_loop' (Loop): trip count M 'm' is -3; it must not be negative");
  ck_assert_ptr_null(acc);
  tsr_tensor_destroy(mt);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

START_TEST(loop_bad_models) {
  /* The body lacks its scan output. */
  tsr_model *model = loop_model(4, true, false, 2);
  tsr_session *s = NULL;
  tsr_test_expect_error(tsr_session_create(rt, model, NULL, &s), TSR_STATUS_INVALID_MODEL,
                        "node 'the_loop' (Loop): body has 2 outputs, expected 3 (condition, 1 "
                        "loop-carried values and 1 scan outputs)");
  ck_assert_ptr_null(s);
  tsr_model_destroy(model);

  /* A negative trip count given as an input: the scan output's shape needs M, so the plan is
   * made with its value, and refuses it. */
  model = loop_model(-1, true, false, 3);
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  int64_t neg = -2;
  tsr_tensor *mt = scalar(TSR_DTYPE_INT64, &neg, 8), *out[2] = {NULL, NULL};
  tsr_test_expect_error(run2(s, "m", mt, 2, out), TSR_STATUS_INVALID_ARGUMENT,
                        "node 'the_loop' (Loop): trip count M 'm' is -2; it must not be negative");
  ck_assert_ptr_null(out[0]);
  /* And a good M afterwards works, with its own plan. */
  int64_t two = 2;
  tsr_tensor *m2 = scalar(TSR_DTYPE_INT64, &two, 8);
  ck_assert_ok(run2(s, "m", m2, 2, out));
  ck_assert_int_eq(tsr_tensor_dims(out[1])[0], 2);
  tsr_tensor_destroy(out[0]);
  tsr_tensor_destroy(out[1]);
  tsr_tensor_destroy(m2);
  tsr_tensor_destroy(mt);
  tsr_session_destroy(s);
  tsr_model_destroy(model);

  /* A scan output whose length depends on a condition computed at run time. */
  model = loop_model(4, true, true, 3);
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  tsr_test_expect_error(run2(s, NULL, NULL, 2, out), TSR_STATUS_UNSUPPORTED,
                        "node 'the_loop' (Loop): scan output 0 'scan' stacks one slice per "
                        "iteration, and the number of iterations is only known at run time");
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* ---- Scan ------------------------------------------------------------------------------- */

/* A running sum over the rows of xs [4,25] (x reshaped), scanned in reverse; the state starts
 * at Relu of the first row and each step also adds w, an outer initializer. */
START_TEST(scan_reverse) {
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 1, (int64_t[]){N});
  mb_init_i64(m, "shape", 1, (int64_t[]){2}, (int64_t[]){4, 25});
  mb_init_f32(m, "w", 0, NULL, (float[]){0.5f});
  mb_node(m, "Reshape", "rows", "x,shape", "xs");
  mb_init_i64(m, "starts", 1, (int64_t[]){1}, (int64_t[]){0});
  mb_init_i64(m, "ends", 1, (int64_t[]){1}, (int64_t[]){25});
  mb_node(m, "Slice", "first", "x,starts,ends", "row0");
  mb_node(m, "Relu", "relu", "row0", "s0");
  mb_node(m, "Scan", "the_scan", "s0,xs", "s,ys");
  mb_attr_int(m, "num_scan_inputs", 1);
  mb_attr_ints(m, "scan_input_directions", 1, (int64_t[]){1});
  mb_attr_ints(m, "scan_output_axes", 1, (int64_t[]){1});
  mb_model *b = mb_new(13);
  mb_input(b, "s_in", TSR_DTYPE_FLOAT32, 1, (int64_t[]){25});
  mb_input(b, "row", TSR_DTYPE_FLOAT32, 1, (int64_t[]){25});
  mb_node(b, "Add", "body_add", "s_in,row", "s1");
  mb_node(b, "Add", "body_w", "s1,w", "s_out");
  mb_node(b, "Identity", "body_id", "s_out", "y_out");
  mb_output(b, "s_out", TSR_DTYPE_FLOAT32);
  mb_output(b, "y_out", TSR_DTYPE_FLOAT32);
  mb_attr_graph(m, "body", b);
  mb_output(m, "s", TSR_DTYPE_FLOAT32);
  mb_output(m, "ys", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  tsr_tensor *out[2] = {NULL, NULL};
  ck_assert_ok(run2(s, NULL, NULL, 2, out));
  ck_assert_uint_eq(tsr_tensor_rank(out[1]), 2);
  ck_assert_int_eq(tsr_tensor_dims(out[1])[0], 25);
  ck_assert_int_eq(tsr_tensor_dims(out[1])[1], 4);
  const float *sd = tsr_tensor_data(out[0]), *yd = tsr_tensor_data(out[1]);
  for (int j = 0; j < 25; j++) {
    float x0 = xs_at(j), acc = x0 > 0 ? x0 : 0;
    for (int t = 0; t < 4; t++) {
      acc += xs_at((3 - t) * 25 + j) + 0.5f;             /* reverse: row 3 first */
      ck_assert_float_eq_tol(yd[j * 4 + t], acc, 1e-5f); /* output axis 1, forward */
    }
    ck_assert_float_eq_tol(sd[j], acc, 1e-5f);
  }
  tsr_tensor_destroy(out[0]);
  tsr_tensor_destroy(out[1]);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* Opset 8: a batch of two sequences of three steps, the second only two long by sequence_lens;
 * the state after a sequence's last step is its final state, and its scan output stays zero
 * past its length. */
START_TEST(scan_opset8_batch_and_lengths) {
  mb_model *m = mb_new(8);
  mb_input(m, "lens", TSR_DTYPE_INT64, 1, (int64_t[]){2});
  mb_input(m, "s0", TSR_DTYPE_FLOAT32, 2, (int64_t[]){2, 4});
  mb_input(m, "xb", TSR_DTYPE_FLOAT32, 3, (int64_t[]){2, 3, 4});
  mb_node(m, "Scan", "scan8", "lens,s0,xb", "s,ys");
  mb_attr_int(m, "num_scan_inputs", 1);
  mb_model *b = mb_new(8);
  mb_input(b, "s_in", TSR_DTYPE_FLOAT32, 1, (int64_t[]){4});
  mb_input(b, "row", TSR_DTYPE_FLOAT32, 1, (int64_t[]){4});
  mb_node(b, "Add", "body_add", "s_in,row", "s_out");
  mb_node(b, "Identity", "body_id", "s_out", "y_out");
  mb_output(b, "s_out", TSR_DTYPE_FLOAT32);
  mb_output(b, "y_out", TSR_DTYPE_FLOAT32);
  mb_attr_graph(m, "body", b);
  mb_output(m, "s", TSR_DTYPE_FLOAT32);
  mb_output(m, "ys", TSR_DTYPE_FLOAT32);
  tsr_model *model = load(m);
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, NULL, &s));
  float s0[8], xb[24];
  for (int i = 0; i < 8; i++)
    s0[i] = (float)i;
  for (int i = 0; i < 24; i++)
    xb[i] = xs_at(i);
  tsr_tensor *lens = NULL, *st0 = NULL, *x = NULL, *out[2] = {NULL, NULL};
  ck_assert_ok(
      tsr_tensor_create_copy(rt, TSR_DTYPE_INT64, 1, (int64_t[]){2}, (int64_t[]){3, 2}, 16, &lens));
  ck_assert_ok(
      tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 2, (int64_t[]){2, 4}, s0, sizeof s0, &st0));
  ck_assert_ok(
      tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 3, (int64_t[]){2, 3, 4}, xb, sizeof xb, &x));
  const char *names[] = {"lens", "s0", "xb"};
  const tsr_tensor *ins[] = {lens, st0, x};
  ck_assert_ok(tsr_session_run(s, NULL, 3, names, ins, 2, NULL, out));
  const float *sd = tsr_tensor_data(out[0]), *yd = tsr_tensor_data(out[1]);
  ck_assert_int_eq(tsr_tensor_dims(out[1])[1], 3);
  for (int bi = 0; bi < 2; bi++)
    for (int j = 0; j < 4; j++) {
      float acc = s0[bi * 4 + j];
      for (int t = 0; t < 3; t++) {
        if (t < 3 - bi)
          acc += xb[(bi * 3 + t) * 4 + j];
        float want = t < 3 - bi ? acc : 0.0f;
        ck_assert_float_eq_tol(yd[(bi * 3 + t) * 4 + j], want, 1e-5f);
      }
      ck_assert_float_eq_tol(sd[bi * 4 + j], acc, 1e-5f);
    }
  tsr_tensor_destroy(out[0]);
  tsr_tensor_destroy(out[1]);
  /* A length past the sequence is refused by name. */
  tsr_tensor_destroy(lens);
  ck_assert_ok(
      tsr_tensor_create_copy(rt, TSR_DTYPE_INT64, 1, (int64_t[]){2}, (int64_t[]){3, 4}, 16, &lens));
  ins[0] = lens;
  tsr_test_expect_error(tsr_session_run(s, NULL, 3, names, ins, 2, NULL, out),
                        TSR_STATUS_INVALID_ARGUMENT,
                        "node 'scan8' (Scan): sequence_lens[1] is 4; it must be in 0..3");
  tsr_tensor_destroy(lens);
  tsr_tensor_destroy(st0);
  tsr_tensor_destroy(x);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* Runs of one session from several threads share the Loop's body session and its plans. */
typedef struct worker_args {
  tsr_session *s;
  atomic_int *errors;
} worker_args;

static void *loop_worker(void *p) {
  worker_args *w = p;
  for (int r = 0; r < 20; r++) {
    tsr_tensor *out[2] = {NULL, NULL};
    tsr_status st = run2(w->s, NULL, NULL, 2, out);
    if (st) {
      tsr_status_free(st);
      atomic_fetch_add(w->errors, 1);
      continue;
    }
    const float *acc = tsr_tensor_data(out[0]);
    for (int i = 0; i < N; i++) {
      float x = xs_at(i), rl = x > 0 ? x : 0;
      if (fabsf(acc[i] - (rl + 4 * x)) > 1e-5f) {
        atomic_fetch_add(w->errors, 1);
        break;
      }
    }
    tsr_tensor_destroy(out[0]);
    tsr_tensor_destroy(out[1]);
  }
  return NULL;
}

START_TEST(loop_from_many_threads) {
  tsr_model *model = loop_model(4, true, false, 3);
  tsr_session *s = NULL;
  tsr_session_options so = {sizeof so};
  so.threads = 2;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  atomic_int errors = 0;
  pthread_t th[4];
  worker_args args = {s, &errors};
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, loop_worker, &args);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  ck_assert_int_eq(atomic_load(&errors), 0);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}
END_TEST

/* ---- Running out of memory ---------------------------------------------------------------- */

/* An allocator that fails its Nth call and every later one. */
typedef struct failing {
  long calls, fail_at;
} failing;

static void *f_alloc(void *self, size_t size) {
  failing *f = self;
  if (++f->calls >= f->fail_at)
    return NULL;
  return malloc(size);
}
static void *f_realloc(void *self, void *p, size_t size) {
  failing *f = self;
  if (++f->calls >= f->fail_at)
    return NULL;
  return realloc(p, size);
}
static void f_free(void *self, void *p) {
  (void)self;
  free(p);
}

/* Every allocation of loading, planning (subgraph sessions included) and running a Loop may
 * fail: each failure is reported as such and frees what was made (LeakSanitizer checks). */
START_TEST(every_allocation_may_fail) {
  mb_model *m = loop_builder(3, true, false, 3);
  size_t size;
  void *bytes = mb_serialize(m, &size);
  mb_free(m);
  float xs[N];
  for (int i = 0; i < N; i++)
    xs[i] = xs_at(i);
  bool succeeded = false;
  long n;
  for (n = 1; n < 20000 && !succeeded; n++) {
    failing f = {0, n};
    tsr_allocator a = {&f, f_alloc, f_realloc, f_free};
    tsr_runtime_options ro = {sizeof ro, &a, 0, 0};
    tsr_runtime *frt = NULL;
    tsr_model *model = NULL;
    tsr_session *s = NULL;
    tsr_tensor *x = NULL, *out[2] = {NULL, NULL};
    tsr_status st = tsr_runtime_create(&ro, &frt);
    if (!st)
      st = tsr_model_load_memory(frt, bytes, size, NULL, &model);
    if (!st)
      st = tsr_session_create(frt, model, NULL, &s);
    if (!st)
      st = tsr_tensor_create_copy(frt, TSR_DTYPE_FLOAT32, 1, (int64_t[]){N}, xs, sizeof xs, &x);
    if (!st) {
      const char *names[] = {"x"};
      const tsr_tensor *ins[] = {x};
      st = tsr_session_run(s, NULL, 1, names, ins, 2, NULL, out);
    }
    if (st) {
      tsr_status_code code = tsr_status_code_of(st);
      ck_assert_msg(code == TSR_STATUS_OUT_OF_MEMORY ||
                        (!model && code == TSR_STATUS_INVALID_MODEL),
                    "allocation %ld failing gave %s: %s", n, tsr_status_code_name(code),
                    tsr_status_message(st));
      tsr_status_free(st);
    } else {
      succeeded = true;
      ck_assert_int_eq(tsr_tensor_dims(out[1])[0], 3);
    }
    tsr_tensor_destroy(out[0]);
    tsr_tensor_destroy(out[1]);
    tsr_tensor_destroy(x);
    tsr_session_destroy(s);
    tsr_model_destroy(model);
    tsr_runtime_destroy(frt);
  }
  free(bytes);
  ck_assert_msg(succeeded, "never succeeded in %ld tries", n);
}
END_TEST

int main(void) {
  Suite *s = suite_create("control_flow");
  TCase *tc = tcase_create("control_flow");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, if_reads_outer_values);
  tcase_add_test(tc, if_branch_mismatch);
  tcase_add_test(tc, loop_trip_count_and_scan_output);
  tcase_add_test(tc, loop_condition_stops_early);
  tcase_add_test(tc, loop_bad_models);
  tcase_add_test(tc, scan_reverse);
  tcase_add_test(tc, scan_opset8_batch_and_lengths);
  tcase_add_test(tc, loop_from_many_threads);
  tcase_add_test(tc, every_allocation_may_fail);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
