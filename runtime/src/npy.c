/* npy.c: read and write NumPy .npy files (C order, <f4 or <i4, rank 0..4;
 * attnrt_npy_read_as also reads <f8 as f32 and <i8 as i32, checked).
 *
 * Layout: "\x93NUMPY", major, minor, a header length (u16 LE for version
 * 1.0, u32 LE for 2.0 and 3.0), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a newline, then the raw data.  Files may be
 * hostile: every length is checked against the file size before it is used
 * and the data must fill the rest of the file exactly. */
#define _XOPEN_SOURCE 700
#include "internal.h"
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* numpy writes headers of a few hundred bytes; more is not an npy file. */
#define NPY_HEADER_MAX (1u << 20)
#define DESCR_MAX 32

static const unsigned char MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static bool read_full(int fd, void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    p += r;
    n -= (size_t)r;
  }
  return true;
}

/* ---- the header dict ------------------------------------------------------ */

typedef struct hparser {
  const char *s;
  size_t len, pos;
  const char *path;
  char *err;
  size_t errlen;
} hparser;

typedef struct npy_header {
  char descr[DESCR_MAX + 1];
  bool fortran;
  int rank;
  int64_t dims[ATTNRT_MAX_RANK];
  bool have_descr, have_fortran, have_shape;
} npy_header;

static attnrt_status hfail(hparser *p, attnrt_status s, const char *what) {
  attnrt_errf(p->err, p->errlen, "%s: bad npy header at offset %zu: %s", p->path, p->pos, what);
  return s;
}

static void hskip(hparser *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

static int hpeek(hparser *p) {
  hskip(p);
  return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static bool hexpect(hparser *p, char c) {
  if (hpeek(p) != (unsigned char)c)
    return false;
  p->pos++;
  return true;
}

/* A quoted Python string without escapes (numpy writes none) into out. */
static attnrt_status hstring(hparser *p, char *out, size_t cap) {
  int q = hpeek(p);
  if (q != '\'' && q != '"')
    return hfail(p, ATTNRT_E_FORMAT, "expected a quoted string");
  size_t start = ++p->pos;
  while (p->pos < p->len && p->s[p->pos] != q) {
    char c = p->s[p->pos];
    if (c == '\\' || (unsigned char)c < 0x20)
      return hfail(p, ATTNRT_E_FORMAT, "unexpected character in string");
    p->pos++;
  }
  if (p->pos >= p->len)
    return hfail(p, ATTNRT_E_FORMAT, "unterminated string");
  size_t n = p->pos - start;
  p->pos++;
  if (n >= cap)
    return hfail(p, ATTNRT_E_FORMAT, "string too long");
  memcpy(out, p->s + start, n);
  out[n] = '\0';
  return ATTNRT_OK;
}

static bool hword(hparser *p, const char *w) {
  size_t n = strlen(w);
  hskip(p);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
    return false;
  p->pos += n;
  return true;
}

/* A non-negative decimal integer; Python 2's numpy wrote a trailing L. */
static attnrt_status hint(hparser *p, int64_t *out) {
  int c = hpeek(p);
  if (c < '0' || c > '9')
    return hfail(p, ATTNRT_E_FORMAT, "expected a non-negative integer in shape");
  int64_t v = 0;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
    int digit = p->s[p->pos] - '0';
    if (v > (INT64_MAX - digit) / 10)
      return hfail(p, ATTNRT_E_FORMAT, "dim too large in shape");
    v = v * 10 + digit;
    p->pos++;
  }
  if (p->pos < p->len && p->s[p->pos] == 'L')
    p->pos++;
  *out = v;
  return ATTNRT_OK;
}

static attnrt_status hshape(hparser *p, npy_header *h) {
  if (!hexpect(p, '('))
    return hfail(p, ATTNRT_E_FORMAT, "shape must be a tuple");
  h->rank = 0;
  if (hexpect(p, ')'))
    return ATTNRT_OK;
  for (;;) {
    int64_t v = 0;
    if (h->rank == ATTNRT_MAX_RANK)
      return hfail(p, ATTNRT_E_SHAPE, "rank above 4 is not supported");
    attnrt_status s = hint(p, &v);
    if (s != ATTNRT_OK)
      return s;
    h->dims[h->rank++] = v;
    if (hexpect(p, ')'))
      return ATTNRT_OK;
    if (!hexpect(p, ','))
      return hfail(p, ATTNRT_E_FORMAT, "expected ',' or ')' in shape");
    if (hexpect(p, ')'))
      return ATTNRT_OK;
  }
}

static attnrt_status hvalue(hparser *p, const char *key, npy_header *h) {
  bool dup;
  attnrt_status s = ATTNRT_OK;
  if (strcmp(key, "descr") == 0) {
    dup = h->have_descr;
    h->have_descr = true;
    if (!dup && hpeek(p) != '\'' && hpeek(p) != '"')
      return hfail(p, ATTNRT_E_DTYPE, "structured dtypes are not supported");
    if (!dup)
      s = hstring(p, h->descr, sizeof h->descr);
  } else if (strcmp(key, "fortran_order") == 0) {
    dup = h->have_fortran;
    h->have_fortran = true;
    if (hword(p, "True"))
      h->fortran = true;
    else if (hword(p, "False"))
      h->fortran = false;
    else
      return hfail(p, ATTNRT_E_FORMAT, "fortran_order must be True or False");
  } else if (strcmp(key, "shape") == 0) {
    dup = h->have_shape;
    h->have_shape = true;
    if (!dup)
      s = hshape(p, h);
  } else {
    char msg[96];
    snprintf(msg, sizeof msg, "unknown key '%s'", key);
    return hfail(p, ATTNRT_E_FORMAT, msg);
  }
  if (s == ATTNRT_OK && dup) {
    char msg[96];
    snprintf(msg, sizeof msg, "duplicate key '%s'", key);
    return hfail(p, ATTNRT_E_FORMAT, msg);
  }
  return s;
}

static attnrt_status parse_dict(hparser *p, npy_header *h) {
  memset(h, 0, sizeof *h);
  if (!hexpect(p, '{'))
    return hfail(p, ATTNRT_E_FORMAT, "expected '{'");
  while (!hexpect(p, '}')) {
    char key[DESCR_MAX + 1];
    attnrt_status s = hstring(p, key, sizeof key);
    if (s != ATTNRT_OK)
      return s;
    if (!hexpect(p, ':'))
      return hfail(p, ATTNRT_E_FORMAT, "expected ':'");
    s = hvalue(p, key, h);
    if (s != ATTNRT_OK)
      return s;
    if (hexpect(p, '}'))
      break;
    if (!hexpect(p, ','))
      return hfail(p, ATTNRT_E_FORMAT, "expected ',' or '}'");
  }
  if (hpeek(p) >= 0)
    return hfail(p, ATTNRT_E_FORMAT, "data after the header dict");
  const char *missing = !h->have_descr ? "descr" : !h->have_fortran ? "fortran_order"
                      : !h->have_shape ? "shape" : NULL;
  if (missing != NULL) {
    attnrt_errf(p->err, p->errlen, "%s: npy header has no '%s'", p->path, missing);
    return ATTNRT_E_FORMAT;
  }
  return ATTNRT_OK;
}

/* ---- reading ---------------------------------------------------------------- */

static const char *fmt_py_shape(char *buf, size_t len, const npy_header *h) {
  size_t pos = 0;
  pos += (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < h->rank && pos < len; i++)
    pos += (size_t)snprintf(buf + pos, len - pos, i ? ", %lld" : "%lld", (long long)h->dims[i]);
  if (pos < len)
    snprintf(buf + pos, len - pos, h->rank == 1 ? ",)" : ")");
  return buf;
}

/* Reads the fixed prefix and the header dict; *data_off is where data starts. */
static attnrt_status read_header(int fd, int64_t size, const char *path, npy_header *h,
                               int64_t *data_off, char *err, size_t errlen) {
  unsigned char pre[12];
  if (size < 10 || !read_full(fd, pre, 10)) {
    attnrt_errf(err, errlen, "%s: file too short for an npy header", path);
    return ATTNRT_E_FORMAT;
  }
  if (memcmp(pre, MAGIC, sizeof MAGIC) != 0) {
    attnrt_errf(err, errlen, "%s: not an npy file (bad magic)", path);
    return ATTNRT_E_FORMAT;
  }
  int major = pre[6], minor = pre[7];
  if (minor != 0 || major < 1 || major > 3) {
    attnrt_errf(err, errlen, "%s: unsupported npy version %d.%d", path, major, minor);
    return ATTNRT_E_FORMAT;
  }
  int64_t prefix = major == 1 ? 10 : 12;
  if (major > 1 && (size < 12 || !read_full(fd, pre + 10, 2))) {
    attnrt_errf(err, errlen, "%s: file too short for an npy header", path);
    return ATTNRT_E_FORMAT;
  }
  uint64_t hlen = major == 1 ? (uint64_t)pre[8] | (uint64_t)pre[9] << 8
                             : (uint64_t)pre[8] | (uint64_t)pre[9] << 8 |
                                   (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
  if (hlen > (uint64_t)(size - prefix)) {
    attnrt_errf(err, errlen, "%s: header length %llu runs past the end of the file (%lld bytes)",
              path, (unsigned long long)hlen, (long long)size);
    return ATTNRT_E_FORMAT;
  }
  if (hlen > NPY_HEADER_MAX) {
    attnrt_errf(err, errlen, "%s: header length %llu is above the limit of %u bytes", path,
              (unsigned long long)hlen, NPY_HEADER_MAX);
    return ATTNRT_E_FORMAT;
  }
  char *text = malloc((size_t)hlen + 1);
  if (text == NULL) {
    attnrt_errf(err, errlen, "%s: out of memory", path);
    return ATTNRT_E_NOMEM;
  }
  attnrt_status s = ATTNRT_OK;
  if (!read_full(fd, text, (size_t)hlen)) {
    attnrt_errf(err, errlen, "%s: truncated npy header", path);
    s = ATTNRT_E_FORMAT;
  } else {
    text[hlen] = '\0';
    hparser p = {text, (size_t)hlen, 0, path, err, errlen};
    s = parse_dict(&p, h);
  }
  free(text);
  *data_off = prefix + (int64_t)hlen;
  return s;
}

/* *wide: the file holds <f8 (converted to f32) or <i8 (to i32), 8-byte
 * elements; only when the caller wants that dtype (want >= 0). */
static attnrt_status check_header(const npy_header *h, const char *path, int want, attnrt_dtype *dtype,
                                bool *wide, int64_t *bytes, char *err, size_t errlen) {
  *wide = false;
  if (strcmp(h->descr, "<f4") == 0) {
    *dtype = ATTNRT_F32;
  } else if (strcmp(h->descr, "<i4") == 0) {
    *dtype = ATTNRT_I32;
  } else if (want == ATTNRT_F32 && strcmp(h->descr, "<f8") == 0) {
    *dtype = ATTNRT_F32;
    *wide = true;
  } else if (want == ATTNRT_I32 && strcmp(h->descr, "<i8") == 0) {
    *dtype = ATTNRT_I32;
    *wide = true;
  } else {
    attnrt_errf(err, errlen, "%s: dtype '%s' is not supported (only '<f4' and '<i4')",
              path, h->descr);
    return ATTNRT_E_DTYPE;
  }
  if (h->fortran) {
    attnrt_errf(err, errlen, "%s: Fortran-order arrays are not supported "
              "(save a C-order array, e.g. with np.ascontiguousarray)", path);
    return ATTNRT_E_FORMAT;
  }
  int64_t n = *wide ? 8 : 4;
  for (int i = 0; i < h->rank; i++) {
    if (!attnrt_mul_i64(n, h->dims[i], &n)) {
      char shape[160];
      attnrt_errf(err, errlen, "%s: shape %s is too large", path,
                fmt_py_shape(shape, sizeof shape, h));
      return ATTNRT_E_FORMAT;
    }
  }
  *bytes = n;
  return ATTNRT_OK;
}

static attnrt_status read_data(int fd, const char *path, int64_t bytes, int64_t avail,
                             const npy_header *h, void **out, char *err, size_t errlen) {
  char shape[160];
  if (avail < bytes) {
    attnrt_errf(err, errlen, "%s: truncated: %lld bytes of data, but %s of shape %s needs %lld",
              path, (long long)avail, h->descr, fmt_py_shape(shape, sizeof shape, h),
              (long long)bytes);
    return ATTNRT_E_FORMAT;
  }
  if (avail > bytes) {
    attnrt_errf(err, errlen, "%s: %lld trailing bytes after the data of shape %s",
              path, (long long)(avail - bytes), fmt_py_shape(shape, sizeof shape, h));
    return ATTNRT_E_FORMAT;
  }
  if ((uint64_t)bytes > SIZE_MAX - 64) {
    attnrt_errf(err, errlen, "%s: %lld bytes of data cannot be addressed", path, (long long)bytes);
    return ATTNRT_E_LIMIT;
  }
  /* 64-byte aligned like scratch memory, for the generated vector loads;
   * aligned_alloc wants a multiple of the alignment and never 0. */
  size_t cap = ((size_t)bytes + 63) / 64 * 64;
  void *data = aligned_alloc(64, cap > 0 ? cap : 64);
  if (data == NULL) {
    attnrt_errf(err, errlen, "%s: out of memory for %lld bytes of data", path, (long long)bytes);
    return ATTNRT_E_NOMEM;
  }
  if (!read_full(fd, data, (size_t)bytes)) {
    free(data);
    attnrt_errf(err, errlen, "%s: truncated while reading the data", path);
    return ATTNRT_E_FORMAT;
  }
  if (!attnrt_host_is_le() && h->descr[2] == '4')   /* 8-byte elements are read as LE by narrow() */
    attnrt_swap4(data, bytes / 4);
  *out = data;
  return ATTNRT_OK;
}

/* "[1, 3]": the row-major position of element k of h's shape ("" for a
 * scalar). */
static const char *fmt_position(char *buf, size_t len, const npy_header *h, int64_t k) {
  int64_t idx[ATTNRT_MAX_RANK + 1];
  for (int d = h->rank - 1; d >= 0; d--) {
    idx[d] = k % h->dims[d];
    k /= h->dims[d];
  }
  size_t pos = 0;
  buf[0] = '\0';
  for (int d = 0; d < h->rank && pos < len; d++) {
    int n = snprintf(buf + pos, len - pos, "%s%lld%s", d ? ", " : "[", (long long)idx[d], d == h->rank - 1 ? "]" : "");
    pos += n > 0 ? (size_t)n : 0;
  }
  return buf;
}

/* <f8 to f32 (rounded to nearest even; a finite value that would round to
 * inf is an error) or <i8 to i32 (a value outside int32 is an error), in
 * place: data holds n 8-byte little-endian elements. */
static attnrt_status narrow(void *data, int64_t n, const npy_header *h, const char *name, char *err, size_t errlen) {
  const unsigned char *b = data;
  bool f = h->descr[1] == 'f';
  char where[160];
  for (int64_t k = 0; k < n; k++) {
    uint64_t bits = 0;
    for (int by = 7; by >= 0; by--)
      bits = bits << 8 | b[8 * k + by];
    if (f) {
      double v;
      memcpy(&v, &bits, 8);
      if (isfinite(v) && fabs(v) >= 0x1.ffffffp127) {
        attnrt_errf(err, errlen, "%s%s = %.10g is beyond the range of f32", name,
                    fmt_position(where, sizeof where, h, k), v);
        return ATTNRT_E_RANGE;
      }
      float x = (float)v;
      memcpy((unsigned char *)data + 4 * k, &x, 4);
    } else {
      int64_t v = (int64_t)bits;
      if (v < INT32_MIN || v > INT32_MAX) {
        attnrt_errf(err, errlen, "%s%s = %lld does not fit in i32", name, fmt_position(where, sizeof where, h, k),
                    (long long)v);
        return ATTNRT_E_RANGE;
      }
      int32_t x = (int32_t)v;
      memcpy((unsigned char *)data + 4 * k, &x, 4);
    }
  }
  return ATTNRT_OK;
}

static attnrt_status read_fd(int fd, const char *path, int want, const char *name, const char **converted,
                             attnrt_tensor *t, char *err, size_t errlen) {
  char ebuf[128];
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    attnrt_errf(err, errlen, "cannot stat %s: %s", path, attnrt_errno_str(errno, ebuf, sizeof ebuf));
    return ATTNRT_E_IO;
  }
  if (!S_ISREG(sb.st_mode)) {
    attnrt_errf(err, errlen, "%s is not a regular file", path);
    return ATTNRT_E_IO;
  }
  npy_header h;
  int64_t off, bytes;
  attnrt_dtype dtype;
  bool wide = false;
  attnrt_status s = read_header(fd, (int64_t)sb.st_size, path, &h, &off, err, errlen);
  if (s == ATTNRT_OK)
    s = check_header(&h, path, want, &dtype, &wide, &bytes, err, errlen);
  void *data = NULL;
  if (s == ATTNRT_OK)
    s = read_data(fd, path, bytes, (int64_t)sb.st_size - off, &h, &data, err, errlen);
  if (s == ATTNRT_OK && wide) {
    s = narrow(data, bytes / 8, &h, name != NULL ? name : path, err, errlen);
    if (s != ATTNRT_OK)
      free(data);
    else if (converted != NULL)
      *converted = dtype == ATTNRT_F32 ? "float64" : "int64";
  }
  if (s != ATTNRT_OK)
    return s;
  t->dtype = dtype;
  t->rank = h.rank;
  for (int i = 0; i < h.rank; i++)
    t->dims[i] = h.dims[i];
  t->data = data;
  return ATTNRT_OK;
}

attnrt_status attnrt_npy_read(const char *path, attnrt_tensor *t, char *err, size_t errlen) {
  return attnrt_npy_read_as(path, -1, NULL, NULL, t, err, errlen);
}

attnrt_status attnrt_npy_read_as(const char *path, int want, const char *name, const char **converted,
                                 attnrt_tensor *t, char *err, size_t errlen) {
  if (converted != NULL)
    *converted = NULL;
  if (t != NULL)
    memset(t, 0, sizeof *t);
  if (path == NULL || t == NULL) {
    attnrt_errf(err, errlen, "attnrt_npy_read: %s is NULL", path == NULL ? "path" : "tensor");
    return ATTNRT_E_ARG;
  }
  char ebuf[128];
  /* O_NONBLOCK: a FIFO given as the path fails the regular-file check
   * below instead of blocking here. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    attnrt_errf(err, errlen, "cannot open %s: %s", path, attnrt_errno_str(errno, ebuf, sizeof ebuf));
    return ATTNRT_E_IO;
  }
  attnrt_status s = read_fd(fd, path, want, name, converted, t, err, errlen);
  close(fd);
  return s;
}

/* ---- writing ---------------------------------------------------------------- */

/* The magic, version 1.0, length and dict, padded so the data starts at a
 * multiple of 64 bytes.  Returns the total length, or 0 if it does not fit. */
static size_t make_header(const attnrt_tensor *t, char *out, size_t cap) {
  char shape[160];
  size_t pos = 0;
  pos += (size_t)snprintf(shape, sizeof shape, "(");
  for (int i = 0; i < t->rank; i++)
    pos += (size_t)snprintf(shape + pos, sizeof shape - pos, i ? ", %lld" : "%lld",
                            (long long)t->dims[i]);
  snprintf(shape + pos, sizeof shape - pos, t->rank == 1 ? ",)" : ")");
  char dict[256];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                   t->dtype == ATTNRT_F32 ? "<f4" : "<i4", shape);
  if (n < 0 || (size_t)n >= sizeof dict)
    return 0;
  size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64; /* +1: the final '\n' */
  if (total > cap)
    return 0;
  size_t hlen = total - 10;
  memcpy(out, MAGIC, sizeof MAGIC);
  out[6] = 1;
  out[7] = 0;
  out[8] = (char)(hlen & 0xFF);
  out[9] = (char)(hlen >> 8);
  memcpy(out + 10, dict, (size_t)n);
  memset(out + 10 + n, ' ', hlen - (size_t)n - 1);
  out[total - 1] = '\n';
  return total;
}

static attnrt_status check_writable(const attnrt_tensor *t, const char *path, int64_t *bytes,
                                  char *err, size_t errlen) {
  if (t->dtype != ATTNRT_F32 && t->dtype != ATTNRT_I32) {
    attnrt_errf(err, errlen, "cannot write %s: bad dtype %d", path, (int)t->dtype);
    return ATTNRT_E_ARG;
  }
  if (t->rank < 0 || t->rank > ATTNRT_MAX_RANK) {
    attnrt_errf(err, errlen, "cannot write %s: bad rank %d", path, t->rank);
    return ATTNRT_E_ARG;
  }
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] < 0) {
      attnrt_errf(err, errlen, "cannot write %s: dim %d is negative", path, i);
      return ATTNRT_E_ARG;
    }
  }
  int64_t n = attnrt_tensor_numel(t);
  if (n < 0 || !attnrt_mul_i64(n, 4, bytes) || (uint64_t)*bytes > SIZE_MAX) {
    attnrt_errf(err, errlen, "cannot write %s: the shape is too large", path);
    return ATTNRT_E_LIMIT;
  }
  if (t->data == NULL && *bytes > 0) {
    attnrt_errf(err, errlen, "cannot write %s: data is NULL", path);
    return ATTNRT_E_ARG;
  }
  return ATTNRT_OK;
}

attnrt_status attnrt_npy_write(const char *path, const attnrt_tensor *t, char *err, size_t errlen) {
  if (path == NULL || t == NULL) {
    attnrt_errf(err, errlen, "attnrt_npy_write: %s is NULL", path == NULL ? "path" : "tensor");
    return ATTNRT_E_ARG;
  }
  int64_t bytes;
  attnrt_status s = check_writable(t, path, &bytes, err, errlen);
  if (s != ATTNRT_OK)
    return s;
  char hdr[512];
  size_t hlen = make_header(t, hdr, sizeof hdr);
  if (hlen == 0) {
    attnrt_errf(err, errlen, "cannot write %s: header too long", path);
    return ATTNRT_E_ARG;
  }
  attnrt_outfile f;
  s = attnrt_out_open(&f, path, err, errlen);
  if (s == ATTNRT_OK)
    s = attnrt_out_write(&f, hdr, hlen, err, errlen);
  if (s == ATTNRT_OK && attnrt_host_is_le()) {
    s = attnrt_out_write(&f, t->data, (size_t)bytes, err, errlen);
  } else if (s == ATTNRT_OK) {
    unsigned char *copy = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (copy == NULL) {
      attnrt_out_abort(&f);
      attnrt_errf(err, errlen, "cannot write %s: out of memory", path);
      return ATTNRT_E_NOMEM;
    }
    memcpy(copy, t->data, (size_t)bytes);
    attnrt_swap4(copy, bytes / 4);
    s = attnrt_out_write(&f, copy, (size_t)bytes, err, errlen);
    free(copy);
  }
  if (s == ATTNRT_OK)
    s = attnrt_out_commit(&f, err, errlen);
  return s;
}
