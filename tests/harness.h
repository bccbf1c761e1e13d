/* Shared helpers for the unit suites: temporary folders, file helpers, Check glue. */
#ifndef TSR_TESTS_HARNESS_H
#define TSR_TESTS_HARNESS_H

#include <check.h>
#include <stdio.h>
#include <stddef.h>

#include "tessera/tessera.h"

/* Fails the current Check test with the status message when s is not NULL. */
#define ck_assert_ok(s)                                                                          \
  do {                                                                                           \
    tsr_status tsr__st = (s);                                                                    \
    if (tsr__st) {                                                                               \
      char tsr__buf[1024];                                                                       \
      snprintf(tsr__buf, sizeof tsr__buf, "%s", tsr_status_message(tsr__st));                    \
      tsr_status_free(tsr__st);                                                                  \
      ck_abort_msg("status: %s", tsr__buf);                                                      \
    }                                                                                            \
  } while (0)

/* Asserts s is an error with code `code` whose message contains `needle`; frees it. */
void tsr_test_expect_error(tsr_status s, tsr_status_code code, const char *needle);

/* A fresh temporary folder (created once per call); the caller frees the string. */
char *tsr_test_tmpdir(void);
/* Writes bytes to path; returns 0 on success. */
int tsr_test_write_file(const char *path, const void *data, size_t size);
/* Reads a whole file; caller frees; NULL on failure. */
void *tsr_test_read_file(const char *path, size_t *size);
/* Paths from the environment meson sets: the tests source folder and build folder. */
const char *tsr_test_srcdir(void);
const char *tsr_test_builddir(void);

/* Serialises a model built with tests/model_builder.h, frees the builder and loads the model
 * into rt, failing the test with the status message when it does not load. */
typedef struct mb_model mb_model;
tsr_model *tsr_test_load_built(tsr_runtime *rt, mb_model *m);

/* Runs a suite with Check's runner and returns the number of failures (for main()). */
int tsr_test_run_suite(Suite *s);

#endif
