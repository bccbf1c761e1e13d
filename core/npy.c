/* .npy files: parsing format 1.0/2.0/3.0, writing format 1.0, and reading whole files.
 *
 * The header is a Python dict literal, for example
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * followed by the raw array. The parser accepts exactly what NumPy writes for plain numeric
 * arrays (either quote style, any spacing, the old "3L" long suffix) and refuses the rest with
 * a message that says which part it did not accept. Errors in the bytes of a file are
 * TSR_STATUS_INVALID_ARGUMENT (the caller handed us a bad file); well-formed arrays of a kind
 * Tessera cannot hold are TSR_STATUS_UNSUPPORTED. */
#include "core/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .npy reader assumes a little-endian host"
#endif

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* The dtypes .npy files can carry to and from Tessera, by NumPy type string without the
 * byte-order character. */
static const struct {
  const char *code;
  int32_t dtype;
} npy_types[] = {
    {"f4", TSR_DTYPE_FLOAT32}, {"f8", TSR_DTYPE_FLOAT64}, {"f2", TSR_DTYPE_FLOAT16},
    {"i1", TSR_DTYPE_INT8},    {"u1", TSR_DTYPE_UINT8},   {"i2", TSR_DTYPE_INT16},
    {"u2", TSR_DTYPE_UINT16},  {"i4", TSR_DTYPE_INT32},   {"u4", TSR_DTYPE_UINT32},
    {"i8", TSR_DTYPE_INT64},   {"u8", TSR_DTYPE_UINT64},  {"b1", TSR_DTYPE_BOOL},
};

static tsr_status bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static tsr_status bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tsr_status s = tsr__status_makev(TSR_STATUS_INVALID_ARGUMENT, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- Header parsing ------------------------------------------------------------------- */

typedef struct cursor {
  const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static bool accept(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

/* A quoted string without escapes (NumPy never writes any in these headers). */
static bool parse_string(cursor *c, const char **s, size_t *len) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return false;
  char q = *c->p++;
  const char *start = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\')
      return false;
    c->p++;
  }
  if (c->p >= c->end)
    return false;
  *s = start;
  *len = (size_t)(c->p - start);
  c->p++;
  return true;
}

static bool match_word(cursor *c, const char *w) {
  skip_ws(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
    return false;
  c->p += n;
  return true;
}

static tsr_status parse_descr(const char *s, size_t len, int32_t *dtype) {
  char shown[64];
  snprintf(shown, sizeof shown, "%.*s", (int)(len < 40 ? len : 40), s);
  if (len < 2)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED, "npy: dtype '%s' is not supported", shown);
  char order = s[0];
  const char *code = s + 1;
  size_t clen = len - 1;
  if (order != '<' && order != '|' && order != '>' && order != '=') {
    order = '=';
    code = s;
    clen = len;
  }
  if (clen >= 1 && code[0] == 'O')
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "npy: object arrays ('%s') are not "
                            "supported",
                            shown);
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
    if (strlen(npy_types[i].code) != clen || memcmp(npy_types[i].code, code, clen) != 0)
      continue;
    /* One-byte types have no byte order; NumPy writes '|' but '>' means the same bytes. */
    if (order == '>' && tsr_dtype_size((tsr_dtype)npy_types[i].dtype) > 1)
      return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                              "npy: big-endian data ('%s') is not "
                              "supported; save it little-endian",
                              shown);
    *dtype = npy_types[i].dtype;
    return NULL;
  }
  return tsr__status_make(TSR_STATUS_UNSUPPORTED, "npy: dtype '%s' is not supported", shown);
}

/* Parses "(2, 3)" into a growing dims array. */
static tsr_status parse_shape(const tsr_allocator *a, cursor *c, int64_t **out_dims,
                              size_t *out_rank) {
  int64_t *dims = NULL;
  size_t rank = 0, cap = 0;
  tsr_status st = NULL;
  if (!accept(c, '('))
    return bad("npy header: 'shape' is not a tuple");
  for (;;) {
    if (accept(c, ')'))
      break;
    skip_ws(c);
    if (c->p < c->end && *c->p == '-') {
      st = bad("npy header: 'shape' has a negative dimension");
      goto fail;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
      st = bad("npy header: 'shape' must hold non-negative integers");
      goto fail;
    }
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      int d = *c->p++ - '0';
      if (v > (INT64_MAX - d) / 10) {
        st = bad("npy header: a dimension in 'shape' overflows");
        goto fail;
      }
      v = v * 10 + d;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
      c->p++; /* Python 2 longs */
    if (rank == cap) {
      cap = cap ? cap * 2 : 8;
      size_t bytes;
      if (!tsr__mul_size(cap, sizeof *dims, &bytes)) {
        st = bad("npy header: 'shape' is too long");
        goto fail;
      }
      int64_t *nd = tsr__realloc(a, dims, bytes);
      if (!nd) {
        st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory reading an npy shape");
        goto fail;
      }
      dims = nd;
    }
    dims[rank++] = v;
    if (accept(c, ','))
      continue;
    if (accept(c, ')'))
      break;
    st = bad("npy header: 'shape' is not a tuple of integers");
    goto fail;
  }
  if (rank > INT32_MAX / 2) {
    st = bad("npy header: 'shape' has %zu dimensions", rank);
    goto fail;
  }
  *out_dims = dims;
  *out_rank = rank;
  return NULL;
fail:
  tsr__free(a, dims);
  return st;
}

typedef struct npy_header {
  int32_t dtype;
  int64_t *dims;
  size_t rank;
} npy_header;

static tsr_status parse_header(const tsr_allocator *a, const char *text, size_t len,
                               npy_header *h) {
  cursor c = {text, text + len};
  bool have_descr = false, have_order = false, have_shape = false;
  if (!accept(&c, '{'))
    return bad("npy header: not a dictionary");
  for (;;) {
    if (accept(&c, '}'))
      break;
    const char *key;
    size_t klen;
    if (!parse_string(&c, &key, &klen))
      return bad("npy header: expected a quoted key");
    if (!accept(&c, ':'))
      return bad("npy header: expected ':' after '%.*s'", (int)klen, key);
    if (klen == 5 && memcmp(key, "descr", 5) == 0) {
      if (have_descr)
        return bad("npy header: 'descr' appears twice");
      const char *s;
      size_t slen;
      skip_ws(&c);
      if (c.p < c.end && *c.p == '[')
        return tsr__status_make(TSR_STATUS_UNSUPPORTED, "npy: structured dtypes are not "
                                                        "supported");
      if (!parse_string(&c, &s, &slen))
        return bad("npy header: 'descr' is not a string");
      TSR_RETURN_IF_ERROR(parse_descr(s, slen, &h->dtype));
      have_descr = true;
    } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
      if (have_order)
        return bad("npy header: 'fortran_order' appears twice");
      if (match_word(&c, "True"))
        return tsr__status_make(TSR_STATUS_UNSUPPORTED, "npy: fortran_order arrays are not "
                                                        "supported; save a C-ordered copy");
      if (!match_word(&c, "False"))
        return bad("npy header: 'fortran_order' is not a boolean");
      have_order = true;
    } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
      if (have_shape)
        return bad("npy header: 'shape' appears twice");
      TSR_RETURN_IF_ERROR(parse_shape(a, &c, &h->dims, &h->rank));
      have_shape = true;
    } else {
      return bad("npy header: unknown key '%.*s'", (int)(klen < 40 ? klen : 40), key);
    }
    if (accept(&c, ','))
      continue;
    if (accept(&c, '}'))
      break;
    return bad("npy header: expected ',' or '}'");
  }
  skip_ws(&c);
  if (c.p != c.end)
    return bad("npy header: unexpected text after the dictionary");
  if (!have_descr)
    return bad("npy header: missing 'descr'");
  if (!have_order)
    return bad("npy header: missing 'fortran_order'");
  if (!have_shape)
    return bad("npy header: missing 'shape'");
  return NULL;
}

static uint32_t read_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

tsr_status tsr__npy_parse(const tsr_allocator *alloc, const void *data, size_t size,
                          tsr__tensor_data **out) {
  if (out)
    *out = NULL;
  if (!out || (!data && size))
    return bad("npy_parse: NULL argument");
  if (!alloc)
    alloc = tsr__default_allocator();
  const uint8_t *b = data;
  if (size < 10 || memcmp(b, npy_magic, sizeof npy_magic) != 0)
    return bad("not an npy file (the magic string \\x93NUMPY is missing)");
  unsigned major = b[6], minor = b[7];
  size_t hstart, hlen;
  if (major == 1) {
    hstart = 10;
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
  } else if (major == 2 || major == 3) {
    if (size < 12)
      return bad("npy header: file ends inside the header length");
    hstart = 12;
    hlen = read_le32(b + 8);
  } else {
    return tsr__status_make(TSR_STATUS_UNSUPPORTED, "npy: format version %u.%u is not supported",
                            major, minor);
  }
  if (hlen > size - hstart)
    return bad("npy header: header length %zu runs past the end of the file (%zu bytes)", hlen,
               size);

  npy_header h = {0};
  tsr_status st = parse_header(alloc, (const char *)b + hstart, hlen, &h);
  if (st) {
    tsr__free(alloc, h.dims);
    return st;
  }
  size_t count, nbytes;
  size_t esize = tsr_dtype_size((tsr_dtype)h.dtype);
  char db[256];
  if (!tsr__shape_count(h.dims, h.rank, &count) || !tsr__mul_size(count, esize, &nbytes)) {
    st =
        bad("npy: the size of shape %s overflows", tsr__format_dims(h.dims, h.rank, db, sizeof db));
    tsr__free(alloc, h.dims);
    return st;
  }
  size_t avail = size - hstart - hlen;
  if (avail != nbytes) {
    st = bad("npy data: %s %s needs %zu bytes, the file has %zu after the header",
             tsr_dtype_name((tsr_dtype)h.dtype), tsr__format_dims(h.dims, h.rank, db, sizeof db),
             nbytes, avail);
    tsr__free(alloc, h.dims);
    return st;
  }
  tsr__tensor_data *t = tsr__calloc(alloc, 1, sizeof *t);
  if (!t) {
    tsr__free(alloc, h.dims);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory reading an npy array");
  }
  t->dtype = h.dtype;
  t->rank = (int32_t)h.rank;
  t->nbytes = nbytes;
  if (h.rank) {
    t->dims = h.dims;
  } else {
    tsr__free(alloc, h.dims);
  }
  if (nbytes) {
    t->data = tsr__alloc(alloc, nbytes);
    if (!t->data) {
      tsr__tensor_data_free(alloc, t);
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY,
                              "out of memory reading an npy array "
                              "(%zu bytes)",
                              nbytes);
    }
    memcpy(t->data, b + hstart + hlen, nbytes);
  }
  *out = t;
  return NULL;
}

/* ---- Writing -------------------------------------------------------------------------- */

tsr_status tsr__npy_write(const char *path, int32_t dtype, size_t rank, const int64_t *dims,
                          const void *data, size_t nbytes) {
  if (!path || (rank && !dims) || (nbytes && !data))
    return bad("npy_write: NULL argument");
  const char *code = NULL;
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
    if (npy_types[i].dtype == dtype)
      code = npy_types[i].code;
  if (!code)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "npy: %s tensors cannot be written (NumPy "
                            "has no such type)",
                            tsr_dtype_name((tsr_dtype)dtype));
  size_t esize = tsr_dtype_size((tsr_dtype)dtype), count, need;
  char db[256];
  if (!tsr__shape_count(dims, rank, &count) || !tsr__mul_size(count, esize, &need))
    return bad("npy_write: shape %s is invalid or too large",
               tsr__format_dims(dims, rank, db, sizeof db));
  if (need != nbytes)
    return bad("npy_write: %s %s needs %zu bytes, got %zu", tsr_dtype_name((tsr_dtype)dtype),
               tsr__format_dims(dims, rank, db, sizeof db), need, nbytes);

  /* Format 1.0 keeps the header under 64 KiB: at most ~3000 dims, far beyond any tensor. */
  const size_t max_header = 65535;
  size_t cap = 96 + rank * 24;
  if (rank > 2000)
    return bad("npy_write: rank %zu is too large for npy format 1.0", rank);
  const tsr_allocator *a = tsr__default_allocator();
  char *hdr = tsr__alloc(a, cap + 64);
  if (!hdr)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory writing '%s'", path);
  size_t pos = (size_t)snprintf(hdr, cap, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                                esize == 1 ? '|' : '<', code);
  for (size_t i = 0; i < rank; i++)
    pos += (size_t)snprintf(hdr + pos, cap - pos, i ? ", %lld" : "%lld", (long long)dims[i]);
  pos += (size_t)snprintf(hdr + pos, cap - pos, rank == 1 ? ",), }" : "), }");
  /* Pad with spaces and end with '\n' so that the data starts on a 64-byte boundary, as NumPy
   * does (it lets readers map the array aligned). */
  size_t total = 10 + pos + 1;
  size_t padded = (total + 63) / 64 * 64;
  memset(hdr + pos, ' ', padded - total);
  pos += padded - total;
  hdr[pos++] = '\n';
  if (pos > max_header) {
    tsr__free(a, hdr);
    return bad("npy_write: header too long for npy format 1.0");
  }
  uint8_t pre[10];
  memcpy(pre, npy_magic, 6);
  pre[6] = 1;
  pre[7] = 0;
  pre[8] = (uint8_t)(pos & 0xff);
  pre[9] = (uint8_t)(pos >> 8);

  FILE *f = fopen(path, "wb");
  if (!f) {
    int e = errno;
    tsr__free(a, hdr);
    return tsr__status_make(TSR_STATUS_IO, "cannot create '%s': %s", path, strerror(e));
  }
  bool ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(hdr, 1, pos, f) == pos &&
            (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
  int e = errno;
  tsr__free(a, hdr);
  if (fclose(f) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok)
    return tsr__status_make(TSR_STATUS_IO, "writing '%s' failed: %s", path, strerror(e));
  return NULL;
}

/* ---- Whole files ---------------------------------------------------------------------- */

tsr_status tsr__read_file(const tsr_allocator *alloc, const char *path, void **out,
                          size_t *out_size) {
  if (out)
    *out = NULL;
  if (out_size)
    *out_size = 0;
  if (!path || !out || !out_size)
    return bad("read_file: NULL argument");
  if (!alloc)
    alloc = tsr__default_allocator();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return tsr__status_make(TSR_STATUS_NOT_FOUND, "file '%s' not found", path);
    return tsr__status_make(TSR_STATUS_IO, "cannot open '%s': %s", path, strerror(e));
  }
  tsr_status st = NULL;
  char *buf = NULL;
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    st = tsr__status_make(TSR_STATUS_IO, "cannot stat '%s': %s", path, strerror(errno));
    goto fail;
  }
  if (S_ISDIR(sb.st_mode)) {
    st = tsr__status_make(TSR_STATUS_IO, "'%s' is a directory, not a file", path);
    goto fail;
  }
  /* Regular files are read in one go (one spare byte shows the end was reached); pipes and
   * devices grow the buffer as they deliver. */
  size_t cap = 65536, len = 0;
  if (S_ISREG(sb.st_mode)) {
    if ((uint64_t)sb.st_size >= (uint64_t)SIZE_MAX) {
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "'%s' is too large to read", path);
      goto fail;
    }
    cap = (size_t)sb.st_size + 1;
  }
  buf = tsr__alloc(alloc, cap);
  if (!buf) {
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory reading '%s' (%zu bytes)", path,
                          cap);
    goto fail;
  }
  for (;;) {
    if (len == cap) {
      size_t ncap;
      if (!tsr__mul_size(cap, 2, &ncap)) {
        st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "'%s' is too large to read", path);
        goto fail;
      }
      char *nb = tsr__realloc(alloc, buf, ncap);
      if (!nb) {
        st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory reading '%s'", path);
        goto fail;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      st = tsr__status_make(TSR_STATUS_IO, "reading '%s' failed: %s", path, strerror(errno));
      goto fail;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  *out = buf;
  *out_size = len;
  return NULL;
fail:
  close(fd);
  tsr__free(alloc, buf);
  return st;
}
