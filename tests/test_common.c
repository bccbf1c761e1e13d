/* Statuses, dtype tables, checked sizes and dims formatting. */
#include <string.h>

#include "core/common.h"
#include "tests/harness.h"

START_TEST(status_carries_code_and_message) {
  tsr_status s = tsr__status_make(TSR_STATUS_INVALID_MODEL, "node '%s' (%s): bad", "conv_3", "Conv");
  ck_assert_int_eq(tsr_status_code_of(s), TSR_STATUS_INVALID_MODEL);
  ck_assert_str_eq(tsr_status_message(s), "node 'conv_3' (Conv): bad");
  s = tsr__status_wrap(s, "model '%s'", "m.onnx");
  ck_assert_str_eq(tsr_status_message(s), "model 'm.onnx': node 'conv_3' (Conv): bad");
  ck_assert_int_eq(tsr_status_code_of(s), TSR_STATUS_INVALID_MODEL);
  tsr_status_free(s);
  ck_assert_int_eq(tsr_status_code_of(NULL), TSR_STATUS_OK);
  ck_assert_str_eq(tsr_status_message(NULL), "OK");
  tsr_status_free(NULL);
  ck_assert_str_eq(tsr_status_code_name(TSR_STATUS_OUT_OF_MEMORY), "OUT_OF_MEMORY");
}
END_TEST

START_TEST(marks_survive_wrapping) {
  tsr_status s = tsr__status_mark(tsr__status_make(TSR_STATUS_UNSUPPORTED, "needs values"),
                                  TSR__STATUS_NEEDS_INPUT_VALUES);
  s = tsr__status_wrap(s, "planning");
  ck_assert(tsr__status_marked(s, TSR__STATUS_NEEDS_INPUT_VALUES));
  tsr_status_free(s);
  s = tsr__status_make(TSR_STATUS_UNSUPPORTED, "only known at run time");
  ck_assert(!tsr__status_marked(s, TSR__STATUS_NEEDS_INPUT_VALUES));
  tsr_status_free(s);
  ck_assert(!tsr__status_marked(NULL, TSR__STATUS_NEEDS_INPUT_VALUES));
}
END_TEST

/* An info struct as an older caller compiled it: only the first two members. */
typedef struct old_info {
  size_t struct_size;
  const char *id;
} old_info;

START_TEST(copy_info_respects_older_callers) {
  tsr_device_info full = {sizeof full, "cpu", "cpu", "name", "vendor", "driver", "f",
                          TSR_DEVICE_KIND_CPU, 0, 42, 2};
  struct {
    old_info info;
    char guard[sizeof(tsr_device_info)];
  } old;
  memset(&old, 0x5a, sizeof old);
  old.info.struct_size = sizeof old.info;
  tsr__copy_info(&old.info, &full, sizeof full);
  ck_assert_uint_eq(old.info.struct_size, sizeof(old_info));
  ck_assert_str_eq(old.info.id, "cpu");
  for (size_t i = 0; i < sizeof old.guard; i++) ck_assert_int_eq(old.guard[i], 0x5a);
  tsr_device_info whole;
  whole.struct_size = 0; /* 0: the caller takes the full size */
  tsr__copy_info(&whole, &full, sizeof full);
  ck_assert_uint_eq(whole.struct_size, sizeof whole);
  ck_assert_uint_eq(whole.memory_bytes, 42);
}
END_TEST

START_TEST(dtype_tables) {
  ck_assert_uint_eq(tsr_dtype_size(TSR_DTYPE_FLOAT32), 4);
  ck_assert_uint_eq(tsr_dtype_size(TSR_DTYPE_FLOAT16), 2);
  ck_assert_uint_eq(tsr_dtype_size(TSR_DTYPE_INT64), 8);
  ck_assert_uint_eq(tsr_dtype_size(TSR_DTYPE_BOOL), 1);
  ck_assert_uint_eq(tsr_dtype_size(TSR_DTYPE_STRING), 0);
  ck_assert_str_eq(tsr_dtype_name(TSR_DTYPE_UINT8), "uint8");
  ck_assert_str_eq(tsr_dtype_name((tsr_dtype)99), "undefined");
  ck_assert_str_eq(tsr_reason_name(TSR_REASON_DTYPE), "dtype");
}
END_TEST

START_TEST(shape_count_checks_overflow) {
  size_t n = 0;
  int64_t ok[] = {2, 3, 4};
  ck_assert(tsr__shape_count(ok, 3, &n));
  ck_assert_uint_eq(n, 24);
  int64_t neg[] = {2, -1};
  ck_assert(!tsr__shape_count(neg, 2, &n));
  int64_t huge[] = {INT64_MAX, INT64_MAX, 4};
  ck_assert(!tsr__shape_count(huge, 3, &n));
  ck_assert(tsr__shape_count(NULL, 0, &n));
  ck_assert_uint_eq(n, 1);
  char buf[64];
  ck_assert_str_eq(tsr__format_dims(ok, 3, buf, sizeof buf), "[2,3,4]");
  ck_assert_str_eq(tsr__format_dims(NULL, 0, buf, sizeof buf), "[]");
}
END_TEST

START_TEST(allocator_helpers) {
  const tsr_allocator *a = tsr__default_allocator();
  char *s = tsr__strdup(a, "hello");
  ck_assert_str_eq(s, "hello");
  tsr__free(a, s);
  ck_assert_ptr_null(tsr__calloc(a, SIZE_MAX / 2, 4));
  tsr__free(a, NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("common");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, status_carries_code_and_message);
  tcase_add_test(tc, dtype_tables);
  tcase_add_test(tc, marks_survive_wrapping);
  tcase_add_test(tc, copy_info_respects_older_callers);
  tcase_add_test(tc, shape_count_checks_overflow);
  tcase_add_test(tc, allocator_helpers);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
