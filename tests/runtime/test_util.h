/* test_util.h: checks, temporary files and file builders shared by the
 * runtime tests.  Each test program includes it once. */
#ifndef ATTNRT_TEST_UTIL_H
#define ATTNRT_TEST_UTIL_H

#define _XOPEN_SOURCE 700
#include "attnrt.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_failures;
static int g_checks;
static char g_tmpdir[256];

/* One line per check; a failure is counted and the program exits 1 at the
 * end, so later checks still run and report. */
static inline bool check(bool ok, const char *fmt, ...) {
  va_list ap;
  g_checks++;
  printf("%s ", ok ? "ok  " : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  if (!ok)
    g_failures++;
  return ok;
}

/* Status and exact message. */
static inline bool check_err(const char *what, attnrt_status got, attnrt_status want,
                      const char *msg, const char *want_msg) {
  bool ok = got == want && strcmp(msg, want_msg) == 0;
  check(ok, "%s", what);
  if (!ok)
    printf("     got  %d \"%s\"\n     want %d \"%s\"\n", got, msg, want, want_msg);
  return ok;
}

/* Status, and a message that contains every given fragment (NULL-ended). */
static inline bool check_err_has(const char *what, attnrt_status got, attnrt_status want,
                          const char *msg, ...) {
  va_list ap;
  bool ok = got == want;
  va_start(ap, msg);
  for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
    if (strstr(msg, frag) == NULL)
      ok = false;
  va_end(ap);
  check(ok, "%s", what);
  if (!ok)
    printf("     got %d (want %d) \"%s\"\n", got, want, msg);
  return ok;
}

static inline int test_finish(const char *name) {
  printf("%s: %d checks, %d failed\n", name, g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

/* ---- temporary files ---------------------------------------------------- */

static inline void remove_tree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0)
    return;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (d != NULL) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
          continue;
        char child[1024];
        if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) < (int)sizeof child)
          remove_tree(child);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static inline void tmpdir_make(const char *tag) {
  const char *base = getenv("TMPDIR");
  snprintf(g_tmpdir, sizeof g_tmpdir, "%s/attnrt-%s-XXXXXX", base && *base ? base : "/tmp", tag);
  if (mkdtemp(g_tmpdir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
}

static inline void tmpdir_remove(void) {
  remove_tree(g_tmpdir);
}

/* DIR/name in one of a few rotating buffers, so several can be live. */
static inline const char *tpath(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, 512, "%s/%s", g_tmpdir, name);
  return b;
}

static inline void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || (n > 0 && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

static inline bool file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* Files in g_tmpdir whose names contain frag. */
static inline int count_files_with(const char *frag) {
  int n = 0;
  DIR *d = opendir(g_tmpdir);
  if (d == NULL)
    return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, frag) != NULL)
      n++;
  closedir(d);
  return n;
}

/* ---- byte buffers -------------------------------------------------------- */

typedef struct bytes {
  unsigned char *p;
  size_t len, cap;
} bytes;

static inline void put(bytes *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
      cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL)
      exit(2);
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->p + b->len, data, n);
  b->len += n;
}

static inline void put_str(bytes *b, const char *s) {
  put(b, s, strlen(s));
}

static inline void put_fmt(bytes *b, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  put(b, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static inline void put_u64le(bytes *b, uint64_t v) {
  unsigned char le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (unsigned char)(v >> (8 * i));
  put(b, le, 8);
}

/* ---- safetensors builders ------------------------------------------------ */

/* A safetensors file with the given header text (exact, length taken from
 * it) and data region. */
static inline void write_st_raw(const char *path, const char *header, const void *data, size_t dlen) {
  bytes b = {0};
  put_u64le(&b, strlen(header));
  put_str(&b, header);
  put(&b, data, dlen);
  write_bytes(path, b.p, b.len);
  free(b.p);
}

typedef struct st_tensor {
  const char *name;
  const char *dtype;     /* "F32", "I32", "F16", ... */
  int rank;
  int64_t dims[8];
  const void *data;
  size_t nbytes;
} st_tensor;

/* A well-formed file holding the tensors back to back, in order. */
static inline void write_st(const char *path, const st_tensor *ts, int n) {
  bytes h = {0}, d = {0};
  put_str(&h, "{");
  for (int i = 0; i < n; i++) {
    put_fmt(&h, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": [", i ? ", " : "", ts[i].name,
            ts[i].dtype);
    for (int a = 0; a < ts[i].rank; a++)
      put_fmt(&h, "%s%lld", a ? ", " : "", (long long)ts[i].dims[a]);
    put_fmt(&h, "], \"data_offsets\": [%zu, %zu]}", d.len, d.len + ts[i].nbytes);
    put(&d, ts[i].data, ts[i].nbytes);
  }
  put_str(&h, "}");
  /* Pad like the reference writer so that data starts 8-byte aligned. */
  while ((8 + h.len) % 8 != 0)
    put_str(&h, " ");
  put(&h, "", 1);
  h.len--; /* NUL-terminate without counting it */
  write_st_raw(path, (const char *)h.p, d.p, d.len);
  free(h.p);
  free(d.p);
}

#endif
