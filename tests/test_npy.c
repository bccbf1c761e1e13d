/* Unit suite for core/npy.c: round trips for every dtype (checked by NumPy too), files NumPy
 * wrote (versions 1.0/2.0/3.0 and the kinds Tessera refuses), hand-made malformed headers,
 * truncated and random bytes, failing allocations, and tsr__read_file errors. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/npy.h"
#include "tests/harness.h"

static char g_files[512]; /* what tests/gen_test_models.py wrote; npy files are in npy/ */

/* The six values of each dtype's [2, 3] array, as in tests/gen_test_models.py (DTYPES). */
static const float f32[6] = {-2.5f, -1, 0, 1, 2.25f, 3e38f};
static const double f64[6] = {-2.5, -1, 0, 1, 2.25, 1e300};
static const uint16_t f16[6] = {0xC100, 0xBC00, 0, 0x3C00, 0x4080, 0x7BFF};
static const int8_t i8[6] = {-128, -1, 0, 1, 2, 127};
static const uint8_t u8[6] = {0, 1, 2, 128, 254, 255};
static const int16_t i16[6] = {-32768, -1, 0, 1, 2, 32767};
static const uint16_t u16[6] = {0, 1, 2, 32768, 65534, 65535};
static const int32_t i32[6] = {INT32_MIN, -1, 0, 1, 2, INT32_MAX};
static const uint32_t u32[6] = {0, 1, 2, 2147483648u, 4294967294u, 4294967295u};
static const int64_t i64[6] = {INT64_MIN, -1, 0, 1, 2, INT64_MAX};
static const uint64_t u64[6] = {0, 1, 2, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};
static const uint8_t b1[6] = {1, 0, 1, 1, 0, 0};

static const struct {
  const char *name;
  int32_t dtype;
  const void *data;
  size_t nbytes;
} cases[] = {
    {"float32", TSR_DTYPE_FLOAT32, f32, sizeof f32},
    {"float64", TSR_DTYPE_FLOAT64, f64, sizeof f64},
    {"float16", TSR_DTYPE_FLOAT16, f16, sizeof f16},
    {"int8", TSR_DTYPE_INT8, i8, sizeof i8},
    {"uint8", TSR_DTYPE_UINT8, u8, sizeof u8},
    {"int16", TSR_DTYPE_INT16, i16, sizeof i16},
    {"uint16", TSR_DTYPE_UINT16, u16, sizeof u16},
    {"int32", TSR_DTYPE_INT32, i32, sizeof i32},
    {"uint32", TSR_DTYPE_UINT32, u32, sizeof u32},
    {"int64", TSR_DTYPE_INT64, i64, sizeof i64},
    {"uint64", TSR_DTYPE_UINT64, u64, sizeof u64},
    {"bool", TSR_DTYPE_BOOL, b1, sizeof b1},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static const int64_t dims23[2] = {2, 3};

/* ---- An allocator that fails the Nth allocation and counts live blocks ------------------ */

typedef struct fail_alloc {
  size_t fail_at;
  size_t count;
  long live;
} fail_alloc;

static void *fa_alloc(void *self, size_t size) {
  fail_alloc *f = self;
  if (++f->count == f->fail_at)
    return NULL;
  void *p = malloc(size);
  if (p)
    f->live++;
  return p;
}

static void *fa_realloc(void *self, void *p, size_t size) {
  fail_alloc *f = self;
  if (++f->count == f->fail_at)
    return NULL;
  void *q = realloc(p, size);
  if (q && !p)
    f->live++;
  return q;
}

static void fa_free(void *self, void *p) {
  fail_alloc *f = self;
  if (!p)
    return;
  f->live--;
  free(p);
}

/* ---- Helpers -------------------------------------------------------------------------- */

static tsr__tensor_data *load_npy(const char *path) {
  void *data;
  size_t size;
  ck_assert_ok(tsr__read_file(NULL, path, &data, &size));
  tsr__tensor_data *t = NULL;
  ck_assert_ok(tsr__npy_parse(NULL, data, size, &t));
  free(data);
  return t;
}

static void check_case(const tsr__tensor_data *t, size_t i) {
  ck_assert_msg(t->dtype == cases[i].dtype, "%s: dtype %d", cases[i].name, t->dtype);
  ck_assert_int_eq(t->rank, 2);
  ck_assert_int_eq(t->dims[0], 2);
  ck_assert_int_eq(t->dims[1], 3);
  ck_assert_uint_eq(t->nbytes, cases[i].nbytes);
  ck_assert_msg(memcmp(t->data, cases[i].data, cases[i].nbytes) == 0, "%s: wrong bytes",
                cases[i].name);
}

/* Builds .npy bytes: magic, version, header length (2 or 4 bytes), header text, data. */
static uint8_t *make_npy(int major, const char *header, const void *data, size_t nbytes,
                         size_t *out_size) {
  size_t hlen = strlen(header), pre = major == 1 ? 10 : 12;
  size_t size = pre + hlen + nbytes;
  uint8_t *b = malloc(size);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (uint8_t)major;
  b[7] = 0;
  if (major == 1) {
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
  } else {
    for (int k = 0; k < 4; k++)
      b[8 + k] = (uint8_t)(hlen >> (8 * k));
  }
  memcpy(b + pre, header, hlen);
  if (nbytes)
    memcpy(b + pre + hlen, data, nbytes);
  *out_size = size;
  return b;
}

static tsr_status parse_header(int major, const char *header, size_t nbytes,
                               tsr__tensor_data **out) {
  static const uint8_t zeros[256];
  size_t size;
  uint8_t *b = make_npy(major, header, zeros, nbytes, &size);
  tsr_status st = tsr__npy_parse(NULL, b, size, out);
  free(b);
  return st;
}

static void header_fails(const char *header, size_t nbytes, tsr_status_code code,
                         const char *needle) {
  tsr__tensor_data *t = (tsr__tensor_data *)1;
  tsr_test_expect_error(parse_header(1, header, nbytes, &t), code, needle);
  ck_assert_ptr_null(t);
}

static tsr__tensor_data *header_ok(int major, const char *header, size_t nbytes) {
  tsr__tensor_data *t = NULL;
  ck_assert_ok(parse_header(major, header, nbytes, &t));
  return t;
}

static uint8_t *valid_npy(size_t *size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/npy/float32.npy", g_files);
  uint8_t *data = tsr_test_read_file(path, size);
  ck_assert_ptr_nonnull(data);
  return data;
}

/* ---- Round trips ---------------------------------------------------------------------- */

START_TEST(test_round_trip_all_dtypes) {
  char *dir = tsr_test_tmpdir(), path[1024];
  for (size_t i = 0; i < N_CASES; i++) {
    snprintf(path, sizeof path, "%s/%s.npy", dir, cases[i].name);
    ck_assert_ok(tsr__npy_write(path, cases[i].dtype, 2, dims23, cases[i].data, cases[i].nbytes));
    /* NumPy aligns the data to 64 bytes; so must we. */
    size_t size;
    uint8_t *raw = tsr_test_read_file(path, &size);
    ck_assert_ptr_nonnull(raw);
    size_t hlen = (size_t)raw[8] | (size_t)raw[9] << 8;
    ck_assert_uint_eq((10 + hlen) % 64, 0);
    ck_assert_uint_eq(size, 10 + hlen + cases[i].nbytes);
    ck_assert_int_eq(raw[10 + hlen - 1], '\n');
    free(raw);
    tsr__tensor_data *t = load_npy(path);
    check_case(t, i);
    tsr__tensor_data_free(NULL, t);
  }
  /* A scalar and an empty array. */
  double x = 3.5;
  snprintf(path, sizeof path, "%s/scalar.npy", dir);
  ck_assert_ok(tsr__npy_write(path, TSR_DTYPE_FLOAT64, 0, NULL, &x, sizeof x));
  tsr__tensor_data *t = load_npy(path);
  ck_assert_int_eq(t->rank, 0);
  ck_assert_uint_eq(t->nbytes, 8);
  ck_assert(*(double *)t->data == 3.5);
  tsr__tensor_data_free(NULL, t);
  const int64_t empty_dims[2] = {0, 3};
  snprintf(path, sizeof path, "%s/empty.npy", dir);
  ck_assert_ok(tsr__npy_write(path, TSR_DTYPE_INT32, 2, empty_dims, NULL, 0));
  t = load_npy(path);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_INT32);
  ck_assert_int_eq(t->rank, 2);
  ck_assert_int_eq(t->dims[0], 0);
  ck_assert_uint_eq(t->nbytes, 0);
  ck_assert_ptr_null(t->data);
  tsr__tensor_data_free(NULL, t);
  /* A 1-D array is written "(n,)", as Python spells a one-element tuple. */
  const int64_t d1[1] = {6};
  snprintf(path, sizeof path, "%s/oned.npy", dir);
  ck_assert_ok(tsr__npy_write(path, TSR_DTYPE_FLOAT32, 1, d1, f32, sizeof f32));
  size_t size;
  char *raw = tsr_test_read_file(path, &size);
  ck_assert_ptr_nonnull(strstr(raw + 10, "'shape': (6,)"));
  free(raw);

  /* NumPy reads back what we wrote. */
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/gen_test_models.py' --verify-npy '%s'",
           tsr_test_srcdir(), dir);
  ck_assert_msg(system(cmd) == 0, "NumPy did not accept the files: %s", cmd);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(dir);
}
END_TEST

START_TEST(test_write_errors) {
  char *dir = tsr_test_tmpdir(), path[1024];
  snprintf(path, sizeof path, "%s/x.npy", dir);
  tsr_test_expect_error(tsr__npy_write(path, TSR_DTYPE_FLOAT32, 2, dims23, f32, 20),
                        TSR_STATUS_INVALID_ARGUMENT, "needs 24 bytes, got 20");
  uint16_t bf[6] = {0};
  tsr_test_expect_error(tsr__npy_write(path, TSR_DTYPE_BFLOAT16, 2, dims23, bf, sizeof bf),
                        TSR_STATUS_UNSUPPORTED, "bfloat16");
  const int64_t neg[1] = {-1};
  tsr_test_expect_error(tsr__npy_write(path, TSR_DTYPE_FLOAT32, 1, neg, f32, 4),
                        TSR_STATUS_INVALID_ARGUMENT, "[-1]");
  snprintf(path, sizeof path, "%s/no/such/dir/x.npy", dir);
  tsr_test_expect_error(tsr__npy_write(path, TSR_DTYPE_FLOAT32, 2, dims23, f32, sizeof f32),
                        TSR_STATUS_IO, path);
  tsr_test_expect_error(tsr__npy_write(NULL, TSR_DTYPE_FLOAT32, 0, NULL, f32, 4),
                        TSR_STATUS_INVALID_ARGUMENT, NULL);
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(dir);
}
END_TEST

/* ---- Files NumPy wrote ---------------------------------------------------------------- */

START_TEST(test_numpy_files) {
  char path[1024];
  for (size_t i = 0; i < N_CASES; i++) {
    snprintf(path, sizeof path, "%s/npy/%s.npy", g_files, cases[i].name);
    tsr__tensor_data *t = load_npy(path);
    check_case(t, i);
    tsr__tensor_data_free(NULL, t);
  }
  const char *versions[] = {"v2", "v3"};
  for (int v = 0; v < 2; v++) {
    snprintf(path, sizeof path, "%s/npy/%s.npy", g_files, versions[v]);
    tsr__tensor_data *t = load_npy(path);
    ck_assert_int_eq(t->dtype, TSR_DTYPE_FLOAT32);
    ck_assert_int_eq(t->rank, 2);
    for (int k = 0; k < 6; k++)
      ck_assert(((float *)t->data)[k] == (float)k);
    tsr__tensor_data_free(NULL, t);
  }
  snprintf(path, sizeof path, "%s/npy/scalar.npy", g_files);
  tsr__tensor_data *t = load_npy(path);
  ck_assert_int_eq(t->rank, 0);
  ck_assert(*(double *)t->data == 3.5);
  tsr__tensor_data_free(NULL, t);
  snprintf(path, sizeof path, "%s/npy/empty.npy", g_files);
  t = load_npy(path);
  ck_assert_int_eq(t->dims[0], 0);
  ck_assert_int_eq(t->dims[1], 3);
  ck_assert_uint_eq(t->nbytes, 0);
  tsr__tensor_data_free(NULL, t);

  static const struct {
    const char *file;
    const char *needle;
  } refused[] = {
      {"fortran", "fortran_order"},
      {"bigendian", "big-endian"},
      {"object", "object arrays"},
      {"complex", "dtype '<c8' is not supported"},
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    snprintf(path, sizeof path, "%s/npy/%s.npy", g_files, refused[i].file);
    void *data;
    size_t size;
    ck_assert_ok(tsr__read_file(NULL, path, &data, &size));
    t = (tsr__tensor_data *)1;
    tsr_test_expect_error(tsr__npy_parse(NULL, data, size, &t), TSR_STATUS_UNSUPPORTED,
                          refused[i].needle);
    ck_assert_ptr_null(t);
    free(data);
  }
}
END_TEST

/* ---- Hand-made headers ---------------------------------------------------------------- */

START_TEST(test_header_variants) {
  /* Double quotes, no spaces, Python 2 longs, no trailing comma. */
  tsr__tensor_data *t =
      header_ok(1, "{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(2L,3L)}\n", 24);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_INT32);
  ck_assert_int_eq(t->rank, 2);
  ck_assert_int_eq(t->dims[1], 3);
  tsr__tensor_data_free(NULL, t);
  /* Keys in another order; '=' is native (little-endian here); '>u1' has no byte order. */
  t = header_ok(1, "{'shape': (4,), 'fortran_order': False, 'descr': '=f4'}", 16);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_FLOAT32);
  tsr__tensor_data_free(NULL, t);
  t = header_ok(1, "{'descr': '>u1', 'fortran_order': False, 'shape': (3,), }", 3);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_UINT8);
  tsr__tensor_data_free(NULL, t);
  t = header_ok(1, "{'descr': '<b1', 'fortran_order': False, 'shape': (), }", 1);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_BOOL);
  ck_assert_int_eq(t->rank, 0);
  tsr__tensor_data_free(NULL, t);
  /* Formats 2.0 and 3.0 have a four-byte header length. */
  t = header_ok(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_FLOAT64);
  tsr__tensor_data_free(NULL, t);
  t = header_ok(3, "{'descr': '<u8', 'fortran_order': False, 'shape': (1, 1), }", 8);
  ck_assert_int_eq(t->dtype, TSR_DTYPE_UINT64);
  tsr__tensor_data_free(NULL, t);
}
END_TEST

START_TEST(test_malformed_headers) {
  static const struct {
    const char *header;
    size_t nbytes;
    tsr_status_code code;
    const char *needle;
  } bad[] = {
      {"", 0, TSR_STATUS_INVALID_ARGUMENT, "not a dictionary"},
      {"hello", 0, TSR_STATUS_INVALID_ARGUMENT, "not a dictionary"},
      {"{'descr': '<f4', 'fortran_order': False, }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "missing 'shape'"},
      {"{'fortran_order': False, 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "missing 'descr'"},
      {"{'descr': '<f4', 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "missing 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4,
       TSR_STATUS_INVALID_ARGUMENT, "unknown key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4,
       TSR_STATUS_INVALID_ARGUMENT, "'descr' appears twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 0,
       TSR_STATUS_INVALID_ARGUMENT, "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", 24,
       TSR_STATUS_INVALID_ARGUMENT, "not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 24,
       TSR_STATUS_INVALID_ARGUMENT, "not a tuple of integers"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24,
       TSR_STATUS_INVALID_ARGUMENT, "non-negative integers"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0,
       TSR_STATUS_INVALID_ARGUMENT, "overflows"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 8), }", 0,
       TSR_STATUS_INVALID_ARGUMENT, "overflows"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
       TSR_STATUS_INVALID_ARGUMENT, "needs 24 bytes, the file has 20"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28,
       TSR_STATUS_INVALID_ARGUMENT, "needs 24 bytes, the file has 28"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "not a boolean"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", 4, TSR_STATUS_UNSUPPORTED,
       "fortran_order"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4, TSR_STATUS_UNSUPPORTED,
       "big-endian"},
      {"{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", 8, TSR_STATUS_UNSUPPORTED,
       "big-endian"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8, TSR_STATUS_UNSUPPORTED,
       "object arrays"},
      {"{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", 20, TSR_STATUS_UNSUPPORTED,
       "dtype '<U5'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4,
       TSR_STATUS_UNSUPPORTED, "structured"},
      {"{'descr': 7, 'fortran_order': False, 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "'descr' is not a string"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "npy header"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "expected ':' after 'descr'"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }", 4, TSR_STATUS_INVALID_ARGUMENT,
       "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", 4,
       TSR_STATUS_INVALID_ARGUMENT, "unexpected text"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4, TSR_STATUS_INVALID_ARGUMENT,
       "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,", 4, TSR_STATUS_INVALID_ARGUMENT,
       "npy header"},
      {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,), }", 4,
       TSR_STATUS_INVALID_ARGUMENT, "'descr' is not a string"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    header_fails(bad[i].header, bad[i].nbytes, bad[i].code, bad[i].needle);
}
END_TEST

START_TEST(test_malformed_preamble) {
  tsr__tensor_data *t = (tsr__tensor_data *)1;
  tsr_test_expect_error(tsr__npy_parse(NULL, "\x93NUMP", 5, &t), TSR_STATUS_INVALID_ARGUMENT,
                        "not an npy file");
  ck_assert_ptr_null(t);
  tsr_test_expect_error(tsr__npy_parse(NULL, "PK\x03\x04 zip file here", 20, &t),
                        TSR_STATUS_INVALID_ARGUMENT, "magic");
  tsr_test_expect_error(tsr__npy_parse(NULL, NULL, 0, &t), TSR_STATUS_INVALID_ARGUMENT,
                        "not an npy file");
  tsr_test_expect_error(tsr__npy_parse(NULL, "\x93NUMPY\x04\x00\x10\x00{}", 12, &t),
                        TSR_STATUS_UNSUPPORTED, "version 4.0");
  /* Header length past the end, in both layouts. */
  tsr_test_expect_error(tsr__npy_parse(NULL, "\x93NUMPY\x01\x00\xff\x00{}", 12, &t),
                        TSR_STATUS_INVALID_ARGUMENT, "runs past the end");
  tsr_test_expect_error(tsr__npy_parse(NULL, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14, &t),
                        TSR_STATUS_INVALID_ARGUMENT, "runs past the end");
  tsr_test_expect_error(tsr__npy_parse(NULL, "\x93NUMPY\x02\x00\x00\x00", 10, &t),
                        TSR_STATUS_INVALID_ARGUMENT, "inside the header length");
  tsr_test_expect_error(tsr__npy_parse(NULL, "\x93NUMPY\x01\x00\x00\x00", 10, NULL),
                        TSR_STATUS_INVALID_ARGUMENT, NULL);
}
END_TEST

/* Every prefix of a real file, and random bytes behind the magic: an error, never a crash. */
START_TEST(test_truncated_and_random) {
  size_t size;
  uint8_t *data = valid_npy(&size);
  for (size_t n = 0; n <= size; n++) {
    uint8_t *cut = malloc(n ? n : 1);
    memcpy(cut, data, n);
    tsr__tensor_data *t = NULL;
    tsr_status st = tsr__npy_parse(NULL, cut, n, &t);
    if (n == size) {
      ck_assert_ok(st);
      tsr__tensor_data_free(NULL, t);
    } else {
      ck_assert_ptr_nonnull(st);
      ck_assert_ptr_null(t);
      tsr_status_free(st);
    }
    free(cut);
  }
  uint64_t s = 12345;
  for (int i = 0; i < 5000; i++) {
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    int changes = 1 + i % 4;
    for (int c = 0; c < changes; c++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      size_t at = 6 + (size_t)(s >> 33) % (size - 6); /* keep the magic */
      copy[at] = (uint8_t)(s >> 17);
    }
    tsr__tensor_data *t = NULL;
    tsr_status st = tsr__npy_parse(NULL, copy, size, &t);
    if (st) {
      ck_assert_ptr_null(t);
      tsr_status_free(st);
    } else {
      ck_assert_uint_le(t->nbytes, size);
      tsr__tensor_data_free(NULL, t);
    }
    free(copy);
  }
  free(data);
}
END_TEST

START_TEST(test_alloc_failures) {
  size_t size;
  uint8_t *data = valid_npy(&size);
  size_t n;
  for (n = 1;; n++) {
    fail_alloc f = {n, 0, 0};
    tsr_allocator a = {&f, fa_alloc, fa_realloc, fa_free};
    tsr__tensor_data *t = NULL;
    tsr_status st = tsr__npy_parse(&a, data, size, &t);
    if (!st) {
      tsr__tensor_data_free(&a, t);
      ck_assert_int_eq(f.live, 0);
      break;
    }
    ck_assert_int_eq(tsr_status_code_of(st), TSR_STATUS_OUT_OF_MEMORY);
    tsr_status_free(st);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(f.live, 0);
  }
  ck_assert_uint_gt(n, 2);
  char path[1024];
  snprintf(path, sizeof path, "%s/npy/float32.npy", g_files);
  fail_alloc f = {1, 0, 0};
  tsr_allocator a = {&f, fa_alloc, fa_realloc, fa_free};
  void *buf = (void *)1;
  size_t got = 7;
  tsr_test_expect_error(tsr__read_file(&a, path, &buf, &got), TSR_STATUS_OUT_OF_MEMORY, path);
  ck_assert_ptr_null(buf);
  ck_assert_uint_eq(got, 0);
  ck_assert_int_eq(f.live, 0);
  free(data);
}
END_TEST

/* ---- Reading files -------------------------------------------------------------------- */

START_TEST(test_read_file) {
  char *dir = tsr_test_tmpdir(), path[1024];
  void *data = (void *)1;
  size_t size = 7;
  snprintf(path, sizeof path, "%s/missing.bin", dir);
  tsr_test_expect_error(tsr__read_file(NULL, path, &data, &size), TSR_STATUS_NOT_FOUND, path);
  ck_assert_ptr_null(data);
  ck_assert_uint_eq(size, 0);
  snprintf(path, sizeof path, "%s/missing/deeper.bin", dir);
  tsr_test_expect_error(tsr__read_file(NULL, path, &data, &size), TSR_STATUS_NOT_FOUND,
                        "not found");
  tsr_test_expect_error(tsr__read_file(NULL, dir, &data, &size), TSR_STATUS_IO, "directory");

  snprintf(path, sizeof path, "%s/empty.bin", dir);
  ck_assert_int_eq(tsr_test_write_file(path, "", 0), 0);
  ck_assert_ok(tsr__read_file(NULL, path, &data, &size));
  ck_assert_ptr_nonnull(data);
  ck_assert_uint_eq(size, 0);
  free(data);

  enum { BIG = 300000 };
  uint8_t *big = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    big[i] = (uint8_t)(i * 7);
  snprintf(path, sizeof path, "%s/big.bin", dir);
  ck_assert_int_eq(tsr_test_write_file(path, big, BIG), 0);
  ck_assert_ok(tsr__read_file(NULL, path, &data, &size));
  ck_assert_uint_eq(size, BIG);
  ck_assert(memcmp(data, big, BIG) == 0);
  free(data);
  free(big);

  if (access("/dev/null", R_OK) == 0) { /* not a regular file: read until the end */
    ck_assert_ok(tsr__read_file(NULL, "/dev/null", &data, &size));
    ck_assert_uint_eq(size, 0);
    free(data);
  }
  if (geteuid() != 0) { /* root reads anything */
    snprintf(path, sizeof path, "%s/secret.bin", dir);
    ck_assert_int_eq(tsr_test_write_file(path, "x", 1), 0);
    ck_assert_int_eq(chmod(path, 0), 0);
    tsr_test_expect_error(tsr__read_file(NULL, path, &data, &size), TSR_STATUS_IO, path);
  }
  tsr_test_expect_error(tsr__read_file(NULL, NULL, &data, &size), TSR_STATUS_INVALID_ARGUMENT,
                        NULL);
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(dir);
}
END_TEST

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(g_files, sizeof g_files, "%s/tessera-npy-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_files)) {
    perror("mkdtemp");
    return 1;
  }
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/gen_test_models.py' '%s'", tsr_test_srcdir(),
           g_files);
  if (system(cmd) != 0) {
    fprintf(stderr, "test_npy: '%s' failed (needs /usr/bin/python3 with onnx and numpy)\n", cmd);
    nftw(g_files, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 1;
  }
  Suite *s = suite_create("npy");
  TCase *tc = tcase_create("npy");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_round_trip_all_dtypes);
  tcase_add_test(tc, test_write_errors);
  tcase_add_test(tc, test_numpy_files);
  tcase_add_test(tc, test_header_variants);
  tcase_add_test(tc, test_malformed_headers);
  tcase_add_test(tc, test_malformed_preamble);
  tcase_add_test(tc, test_truncated_and_random);
  tcase_add_test(tc, test_alloc_failures);
  tcase_add_test(tc, test_read_file);
  suite_add_tcase(s, tc);
  int failed = tsr_test_run_suite(s);
  nftw(g_files, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failed != 0;
}
