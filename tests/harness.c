#include "tests/harness.h"
#include "tests/model_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tsr_test_expect_error(tsr_status s, tsr_status_code code, const char *needle) {
  ck_assert_msg(s != NULL, "expected an error containing '%s', got success", needle);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", tsr_status_message(s));
  tsr_status_code got = tsr_status_code_of(s);
  tsr_status_free(s);
  ck_assert_msg(got == code, "expected %s, got %s: %s", tsr_status_code_name(code),
                tsr_status_code_name(got), msg);
  ck_assert_msg(needle == NULL || strstr(msg, needle) != NULL,
                "message '%s' does not mention '%s'", msg, needle);
}

char *tsr_test_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[512];
  snprintf(tmpl, sizeof tmpl, "%s/tessera-test-XXXXXX", base && *base ? base : "/tmp");
  char *dir = mkdtemp(tmpl);
  ck_assert_msg(dir != NULL, "mkdtemp failed");
  return strdup(dir);
}

int tsr_test_write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = size ? fwrite(data, 1, size, f) : 0;
  int rc = fclose(f);
  return (w == size && rc == 0) ? 0 : -1;
}

void *tsr_test_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf && size) *size = (size_t)n;
  return buf;
}

const char *tsr_test_srcdir(void) {
  const char *d = getenv("TSR_TEST_SRCDIR");
  return d ? d : "tests";
}

const char *tsr_test_builddir(void) {
  const char *d = getenv("TSR_TEST_BUILDDIR");
  return d ? d : ".";
}

int tsr_test_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed;
}

tsr_model *tsr_test_load_built(tsr_runtime *rt, mb_model *m) {
  size_t size;
  void *bytes = mb_serialize(m, &size);
  mb_free(m);
  tsr_model *model = NULL;
  ck_assert_ok(tsr_model_load_memory(rt, bytes, size, NULL, &model));
  free(bytes);
  return model;
}
