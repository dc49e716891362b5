/* status.c: status strings, message formatting, checked arithmetic and the
 * small tensor helpers every other file uses. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *attnrt_status_str(attnrt_status s) {
  switch (s) {
  case ATTNRT_OK: return "ok";
  case ATTNRT_E_ARG: return "bad argument";
  case ATTNRT_E_IO: return "I/O error";
  case ATTNRT_E_FORMAT: return "malformed file";
  case ATTNRT_E_MISSING: return "missing parameter";
  case ATTNRT_E_SHAPE: return "shape mismatch";
  case ATTNRT_E_DTYPE: return "dtype mismatch";
  case ATTNRT_E_RANGE: return "out of range";
  case ATTNRT_E_NOMEM: return "out of memory";
  case ATTNRT_E_LIMIT: return "size limit exceeded";
  }
  return "unknown status";
}

/* Length of the UTF-8 sequence at p (2 to 4) if it is well formed and its
 * code point is safe to show, else 0.  Unsafe: C1 controls, the bidi
 * embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) and
 * the marks U+200E/U+200F, which could make a terminal show a name other
 * than the bytes it has. */
static size_t safe_utf8(const unsigned char *p) {
  unsigned c = p[0], n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || c > 0xF4)
    return 0;
  unsigned cp = c & (0xFF >> (n + 1));
  for (unsigned i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp < 0xE000))
    return 0;
  if (cp < 0xA0 || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
      (cp >= 0x2066 && cp <= 0x2069))
    return 0;
  return n;
}

/* Messages carry names from files (tensor names in a safetensors header)
 * that may hold terminal escapes: every control byte, and every byte not
 * part of a safe UTF-8 character, is written as \xNN. */
void attnrt_verrf(char *err, size_t errlen, const char *fmt, va_list ap) {
  if (err == NULL || errlen == 0)
    return;
  char raw[2 * ATTNRT_ERR_LEN];
  if (vsnprintf(raw, sizeof raw, fmt, ap) < 0)
    raw[0] = '\0';
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)raw; *p != '\0' && o + 1 < errlen;) {
    size_t n = *p >= 0x80 ? safe_utf8(p) : (*p >= 0x20 && *p != 0x7F);
    if (n > 0 && o + n < errlen) {
      memcpy(err + o, p, n);
      o += n;
      p += n;
    } else if (n == 0 && o + 4 < errlen) {
      snprintf(err + o, 5, "\\x%02x", *p);
      o += 4;
      p++;
    } else {
      break;
    }
  }
  err[o] = '\0';
}

void attnrt_errf(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  attnrt_verrf(err, errlen, fmt, ap);
  va_end(ap);
}

bool attnrt_mul_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0)
    return false;
  if (a != 0 && b > INT64_MAX / a)
    return false;
  *out = a * b;
  return true;
}

bool attnrt_add_i64(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0 || a > INT64_MAX - b)
    return false;
  *out = a + b;
  return true;
}

int64_t attnrt_tensor_numel(const attnrt_tensor *t) {
  if (t == NULL || t->rank < 0 || t->rank > ATTNRT_MAX_RANK)
    return -1;
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    if (!attnrt_mul_i64(n, t->dims[i], &n))
      return -1;
  return n;
}

void attnrt_tensor_free(attnrt_tensor *t) {
  if (t == NULL)
    return;
  free(t->data);
  t->data = NULL;
}

const char *attnrt_dtype_name(int64_t dtype) {
  switch (dtype) {
  case ATTNRT_F32: return "f32";
  case ATTNRT_I32: return "i32";
  case ATTNRT_BF16: return "bf16";
  default: return "?";
  }
}

/* Appends with truncation; pos may pass len, later appends then do nothing. */
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
  if (*pos >= len)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
  va_end(ap);
  if (n > 0)
    *pos += (size_t)n;
}

const char *attnrt_fmt_shape(char *buf, size_t len, int rank, const int64_t *dims,
                           const attnrt_model_desc *model) {
  size_t pos = 0;
  if (len == 0)
    return buf;
  buf[0] = '\0';
  append(buf, len, &pos, "[");
  for (int i = 0; i < rank && i < ATTNRT_MAX_RANK; i++) {
    const char *sep = i ? ", " : "";
    int64_t d = dims[i];
    int64_t sym = -(d + 1);
    if (d < 0 && model != NULL && sym < model->n_dims && model->dim_names != NULL &&
        model->dim_names[sym] != NULL)
      append(buf, len, &pos, "%s%s", sep, model->dim_names[sym]);
    else
      append(buf, len, &pos, "%s%lld", sep, (long long)d);
  }
  append(buf, len, &pos, "]");
  return buf;
}

/* strerror is not thread-safe everywhere; the XSI strerror_r is. */
const char *attnrt_errno_str(int e, char *buf, size_t len) {
  if (strerror_r(e, buf, len) != 0)
    snprintf(buf, len, "error %d", e);
  return buf;
}

void attnrt_swap4(void *p, int64_t n) {
  unsigned char *b = p;
  for (int64_t i = 0; i < n; i++, b += 4) {
    unsigned char x = b[0], y = b[1];
    b[0] = b[3];
    b[1] = b[2];
    b[2] = y;
    b[3] = x;
  }
}
