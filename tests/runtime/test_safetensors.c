/* test_safetensors: attnrt_st_open on good files and on hostile ones, whose
 * every lie must be an error naming the file (and tensor), never a crash or
 * an out-of-bounds read (run this under ASan too). */
#include "test_util.h"

#include <fcntl.h>

static const float A[6] = {1, 2, 3, 4, 5, 6};
static const int32_t B[4] = {10, -20, 30, -40};
static const uint16_t C[4] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* F16 1, 2, 3, 4 */

static void test_good_file(void) {
  char err[512] = "";
  const char *p = tpath("good.safetensors");
  /* Names with escapes, a metadata block, entries out of offset order, an
   * F16 entry the runtime lists but cannot use. */
  bytes d = {0};
  put(&d, C, sizeof C);
  put(&d, A, sizeof A);
  put(&d, B, sizeof B);
  write_st_raw(p,
               "{\"__metadata__\": {\"format\": \"pt\", \"note\": \"tab\\there \\u00e9\"},\n"
               " \"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [8, 32]},\n"
               " \"caf\\u00e9.b\": {\"shape\": [4], \"data_offsets\": [32, 48], \"dtype\": \"I32\"},\n"
               " \"emoji\\ud83d\\ude00\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [0, 8]},\n"
               " \"scalar\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [8, 12]},\n"
               " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [48, 48]}\n"
               "}    ",
               d.p, d.len);
  free(d.p);
  attnrt_safetensors *st = NULL;
  attnrt_status s = attnrt_st_open(p, &st, err, sizeof err);
  if (!check(s == ATTNRT_OK && st != NULL, "open a good file (%s)", err))
    return;
  check(attnrt_st_count(st) == 5, "five entries (metadata is not one)");
  check(strcmp(attnrt_st_name(st, 0), "a") == 0 && strcmp(attnrt_st_name(st, 1), "caf\xc3\xa9.b") == 0 &&
            strcmp(attnrt_st_name(st, 2), "emoji\xf0\x9f\x98\x80") == 0,
        "names in file order, \\u escapes and surrogate pairs decoded to UTF-8");
  attnrt_tensor t;
  s = attnrt_st_get(st, 0, &t);
  check(s == ATTNRT_OK && t.dtype == ATTNRT_F32 && t.rank == 2 && t.dims[0] == 2 && t.dims[1] == 3 &&
            memcmp(t.data, A, sizeof A) == 0,
        "F32 [2, 3] entry and its data");
  check((uintptr_t)t.data % 4 == 0, "F32 data is 4-byte aligned");
  int j = attnrt_st_find(st, "caf\xc3\xa9.b");
  s = attnrt_st_get(st, j, &t);
  check(j == 1 && s == ATTNRT_OK && t.dtype == ATTNRT_I32 && t.rank == 1 && t.dims[0] == 4 &&
            memcmp(t.data, B, sizeof B) == 0,
        "find by UTF-8 name; I32 [4] entry and its data");
  s = attnrt_st_get(st, 2, &t);
  check(s == ATTNRT_OK && t.rank == -1 && t.data == NULL, "F16 entry listed with rank -1, no data");
  s = attnrt_st_get(st, 3, &t);
  check(s == ATTNRT_OK && t.rank == 0 && *(float *)t.data == 1.0f, "rank-0 entry");
  s = attnrt_st_get(st, 4, &t);
  check(s == ATTNRT_OK && t.rank == 2 && t.dims[0] == 0 && t.dims[1] == 5, "zero-size entry");
  check(attnrt_st_find(st, "nope") == -1 && attnrt_st_find(st, "") == -1 && attnrt_st_find(st, NULL) == -1,
        "find of an absent name is -1");
  check(attnrt_st_get(st, 5, &t) == ATTNRT_E_RANGE && attnrt_st_get(st, -1, &t) == ATTNRT_E_RANGE,
        "get out of range is ATTNRT_E_RANGE");
  check(attnrt_st_name(st, 5) == NULL, "name out of range is NULL");
  attnrt_st_close(st);

  /* Overlapping byte ranges are allowed: two names for the same bytes. */
  write_st_raw(p,
               "{\"x\": {\"dtype\": \"F32\", \"shape\": [6], \"data_offsets\": [0, 24]},"
               " \"y\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
               A, sizeof A);
  s = attnrt_st_open(p, &st, err, sizeof err);
  check(s == ATTNRT_OK, "overlapping data_offsets are accepted (%s)", err);
  if (s == ATTNRT_OK) {
    attnrt_st_get(st, 1, &t);
    check(((float *)t.data)[0] == 3.0f, "overlapping entry reads the shared bytes");
    attnrt_st_close(st);
  }

  write_st_raw(p, "{}", NULL, 0);
  s = attnrt_st_open(p, &st, err, sizeof err);
  check(s == ATTNRT_OK && attnrt_st_count(st) == 0, "an empty header {} is a file of no tensors");
  attnrt_st_close(st);
  attnrt_st_close(NULL);
}

/* A header whose length puts the data region at an odd address: the F32
 * entry must still come back 4-byte aligned with the right values. */
static void test_misaligned(void) {
  char err[512] = "";
  const char *p = tpath("odd.safetensors");
  const char *h = "{\"w\": {\"dtype\": \"F32\", \"shape\": [6], \"data_offsets\": [1, 25]},"
                  " \"i\": {\"dtype\": \"I32\", \"shape\": [4], \"data_offsets\": [25, 41]}}";
  bytes d = {0};
  put(&d, "\x7f", 1);
  put(&d, A, sizeof A);
  put(&d, B, sizeof B);
  write_st_raw(p, h, d.p, d.len);
  free(d.p);
  attnrt_safetensors *st = NULL;
  attnrt_status s = attnrt_st_open(p, &st, err, sizeof err);
  if (!check(s == ATTNRT_OK, "open a file with misaligned tensors (%s)", err))
    return;
  attnrt_tensor t, u;
  attnrt_st_get(st, 0, &t);
  attnrt_st_get(st, 1, &u);
  check((uintptr_t)t.data % 4 == 0 && memcmp(t.data, A, sizeof A) == 0,
        "misaligned F32 data is copied to an aligned buffer");
  check((uintptr_t)u.data % 4 == 0 && memcmp(u.data, B, sizeof B) == 0,
        "misaligned I32 data is copied to an aligned buffer");
  attnrt_st_close(st);
}

static void expect_bad(const char *label, const char *header, const void *data, size_t dlen,
                       attnrt_status want, const char *frag) {
  char err[512] = "";
  const char *p = tpath("bad.safetensors");
  write_st_raw(p, header, data, dlen);
  attnrt_safetensors *st = (attnrt_safetensors *)&err; /* must be reset to NULL */
  attnrt_status s = attnrt_st_open(p, &st, err, sizeof err);
  check_err_has(label, s, want, err, p, frag, NULL);
  check(st == NULL, "%s: no handle is returned", label);
  if (s == ATTNRT_OK)
    attnrt_st_close(st);
}

static void expect_bad_exact(const char *label, const char *header, const void *data, size_t dlen,
                             attnrt_status want, const char *msg_after_path) {
  char err[512] = "", want_msg[1024];
  const char *p = tpath("bad.safetensors");
  write_st_raw(p, header, data, dlen);
  attnrt_safetensors *st = NULL;
  attnrt_status s = attnrt_st_open(p, &st, err, sizeof err);
  snprintf(want_msg, sizeof want_msg, "%s: %s", p, msg_after_path);
  check_err(label, s, want, err, want_msg);
  attnrt_st_close(st);
}

static void test_hostile_entries(void) {
  expect_bad_exact("offsets past the data region: exact message",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [25], \"data_offsets\": [0, 100]}}",
                   A, sizeof A, ATTNRT_E_FORMAT,
                   "tensor 'w': data_offsets [0, 100] are outside the data region of 24 bytes");
  expect_bad_exact("byte count and shape disagree: exact message",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 24]}}",
                   A, sizeof A, ATTNRT_E_FORMAT,
                   "tensor 'w': data_offsets [0, 24] hold 24 bytes but 4 elements of F32 need 16");
  expect_bad("begin after end",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w': data_offsets [8, 4] are outside");
  expect_bad("F16 byte count is checked too",
             "{\"h\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "tensor 'h'");
  expect_bad("element count overflows",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
             "\"data_offsets\": [0, 0]}}", A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w'");
  expect_bad("byte count overflows",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 2], "
             "\"data_offsets\": [0, 0]}}", A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w'");
  expect_bad("offset beyond int64",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 18446744073709551620]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "integer too large");
  expect_bad_exact("duplicate names: exact message",
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"v\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                   A, sizeof A, ATTNRT_E_FORMAT, "duplicate tensor 'w'");
  expect_bad("F32 of rank 5",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1], \"data_offsets\": [0, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w' has rank 5");
  expect_bad("missing data_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", A, sizeof A,
             ATTNRT_E_FORMAT, "tensor 'w' has no 'data_offsets'");
  expect_bad("empty entry", "{\"w\": {}}", A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w' has no 'dtype'");
  expect_bad("unknown key in an entry",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}",
             A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w': unknown key 'x'");
  expect_bad("duplicate key in an entry",
             "{\"w\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w': duplicate key 'dtype'");
  expect_bad("three data_offsets",
             "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "data_offsets must be [begin, end]");
  expect_bad("one data_offset", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "data_offsets must be [begin, end]");
  expect_bad("dtype not a string", "{\"w\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "dtype must be a string");
  expect_bad("malformed dtype",
             "{\"w\": {\"dtype\": \"f32 \", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "tensor 'w' has a malformed dtype");
  expect_bad("negative dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "non-negative");
  expect_bad("a name with a NUL",
             "{\"w\\u0000x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             A, sizeof A, ATTNRT_E_FORMAT, "NUL character");
  expect_bad("metadata values must be strings", "{\"__metadata__\": {\"n\": 1}}", NULL, 0,
             ATTNRT_E_FORMAT, "__metadata__ values must be strings");
  expect_bad("duplicate metadata", "{\"__metadata__\": {}, \"__metadata__\": {}}", NULL, 0,
             ATTNRT_E_FORMAT, "duplicate __metadata__");
}

static void test_bad_json(void) {
  struct { const char *label, *header, *frag; } cases[] = {
    {"empty header", "", "unexpected end of header"},
    {"not an object", "[]", "expected '{'"},
    {"missing colon", "{\"w\" {}}", "expected ':'"},
    {"trailing comma", "{\"w\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},}",
     "expected '\"'"},
    {"unterminated object", "{\"w\": {\"dtype\": \"F32\"", "unexpected end of header"},
    {"unterminated string", "{\"w", "unterminated string"},
    {"bad escape", "{\"w\\q\": {}}", "bad escape"},
    {"truncated \\u escape", "{\"w\\u12", "\\u escape"},
    {"bad hex in \\u escape", "{\"w\\u12G4\": {}}", "bad hex digit"},
    {"lone high surrogate", "{\"w\\ud800x\": {}}", "unpaired high surrogate"},
    {"lone low surrogate", "{\"w\\udc00\": {}}", "unpaired low surrogate"},
    {"raw control character", "{\"w\nx\": {}}", "control character"},
    {"invalid UTF-8", "{\"w\xff\": {}}", "invalid UTF-8"},
    {"overlong UTF-8", "{\"w\xc0\xaf\": {}}", "invalid UTF-8"},
    {"UTF-8 surrogate", "{\"w\xed\xa0\x80\": {}}", "invalid UTF-8"},
    {"truncated UTF-8", "{\"w\xe2\x82", "invalid UTF-8"},
    {"leading zero", "{\"w\": {\"dtype\": \"F32\", \"shape\": [01], \"data_offsets\": [0, 4]}}",
     "leading zero"},
    {"fraction", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.0], \"data_offsets\": [0, 4]}}",
     "not a fraction"},
    {"exponent", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1e0], \"data_offsets\": [0, 4]}}",
     "not a fraction"},
    {"bare word", "{\"w\": {\"dtype\": \"F32\", \"shape\": [true], \"data_offsets\": [0, 4]}}",
     "expected an integer"},
    {"missing comma in array", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1 1], \"data_offsets\": [0, 4]}}",
     "expected ',' or ']'"},
    {"missing comma in object", "{\"w\": {\"dtype\": \"F32\" \"shape\": [1]}}", "expected ',' or '}'"},
    {"data after the object", "{} {}", "data after the header object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_bad(cases[i].label, cases[i].header, A, sizeof A, ATTNRT_E_FORMAT, cases[i].frag);

  /* A NUL byte inside the header (strlen would stop at it). */
  char err[512] = "";
  const char *p = tpath("nul.safetensors");
  bytes b = {0};
  put_u64le(&b, 3);
  put(&b, "{}\0", 3);
  write_bytes(p, b.p, b.len);
  free(b.p);
  attnrt_safetensors *st = NULL;
  attnrt_status s = attnrt_st_open(p, &st, err, sizeof err);
  check_err_has("NUL byte after the object", s, ATTNRT_E_FORMAT, err, "data after the header object",
                NULL);
  attnrt_st_close(st);
}

/* Deep nesting must fail fast without recursion (no stack overflow). */
static void test_deep_nesting(void) {
  const int depth = 200000;
  struct { const char *label, *open, *close, *prefix, *suffix, *frag; } cases[] = {
    {"deeply nested arrays at the top", "[", "]", "", "", "expected '{'"},
    {"deeply nested objects as an entry", "{\"a\": ", "}", "{\"w\": ", "}", "tensor 'w': unknown key 'a'"},
    {"deeply nested arrays as a shape", "[", "]",
     "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4], \"shape\": ", "}}", "expected an integer"},
    {"deeply nested metadata", "{\"a\": ", "}", "{\"__metadata__\": ", "}",
     "__metadata__ values must be strings"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    bytes h = {0};
    put_str(&h, cases[c].prefix);
    for (int i = 0; i < depth; i++)
      put_str(&h, cases[c].open);
    for (int i = 0; i < depth; i++)
      put_str(&h, cases[c].close);
    put_str(&h, cases[c].suffix);
    put(&h, "", 1);
    expect_bad(cases[c].label, (const char *)h.p, A, sizeof A, ATTNRT_E_FORMAT, cases[c].frag);
    free(h.p);
  }
}

static void test_bad_files(void) {
  char err[512] = "", want[1024];
  const char *p = tpath("short.safetensors");
  attnrt_safetensors *st = NULL;

  bytes b = {0};
  put_u64le(&b, 1000);
  put_str(&b, "{}");
  write_bytes(p, b.p, b.len);
  free(b.p);
  attnrt_status s = attnrt_st_open(p, &st, err, sizeof err);
  snprintf(want, sizeof want, "%s: header length 1000 runs past the end of the file (10 bytes)", p);
  check_err("header length past the end: exact message", s, ATTNRT_E_FORMAT, err, want);

  b = (bytes){0};
  put_u64le(&b, UINT64_MAX);
  put_str(&b, "{}");
  write_bytes(p, b.p, b.len);
  free(b.p);
  s = attnrt_st_open(p, &st, err, sizeof err);
  check_err_has("header length 2^64-1", s, ATTNRT_E_FORMAT, err, "runs past the end", NULL);

  write_bytes(p, "\x02\0\0\0\0\0\0", 7);
  s = attnrt_st_open(p, &st, err, sizeof err);
  check_err_has("a file of 7 bytes", s, ATTNRT_E_FORMAT, err, "too short", NULL);

  /* A sparse file larger than the header limit, claiming a huge header. */
  uint64_t big = (UINT64_C(100) << 20) + 1;
  b = (bytes){0};
  put_u64le(&b, big);
  put_str(&b, "{}");
  write_bytes(p, b.p, b.len);
  free(b.p);
  if (truncate(p, (off_t)(big + 8 + 16)) == 0) {
    s = attnrt_st_open(p, &st, err, sizeof err);
    check_err_has("header above 100 MiB", s, ATTNRT_E_FORMAT, err, "above the limit of 104857600", NULL);
  }
  unlink(p);

  s = attnrt_st_open(tpath("absent.safetensors"), &st, err, sizeof err);
  check_err_has("missing file", s, ATTNRT_E_IO, err, "cannot open", "absent.safetensors", NULL);
  s = attnrt_st_open(g_tmpdir, &st, err, sizeof err);
  check_err_has("a directory", s, ATTNRT_E_IO, err, "not a regular file", NULL);
  const char *fifo = tpath("fifo.safetensors");
  if (mkfifo(fifo, 0600) == 0) {
    s = attnrt_st_open(fifo, &st, err, sizeof err);
    check_err_has("a FIFO (must not block)", s, ATTNRT_E_IO, err, "not a regular file", NULL);
  }
  check(attnrt_st_open(NULL, &st, err, sizeof err) == ATTNRT_E_ARG, "NULL path is ATTNRT_E_ARG");
  check(attnrt_st_open(p, NULL, NULL, 0) == ATTNRT_E_ARG, "NULL out, NULL err is ATTNRT_E_ARG");
  check(attnrt_st_count(NULL) == 0 && attnrt_st_find(NULL, "a") == -1 && attnrt_st_name(NULL, 0) == NULL,
        "queries on a NULL handle are safe");
}

/* Every truncation of a good file fails cleanly (or, with the data whole,
 * succeeds): no prefix of a file may be read past its end. */
static void test_every_truncation(void) {
  const char *p = tpath("full.safetensors");
  st_tensor ts[2] = {{"a", "F32", 2, {2, 3}, A, sizeof A}, {"b", "I32", 1, {4}, B, sizeof B}};
  write_st(p, ts, 2);
  FILE *f = fopen(p, "rb");
  unsigned char buf[512];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f)
    fclose(f);
  const char *q = tpath("trunc.safetensors");
  int bad = 0;
  for (size_t len = 0; len < n; len++) {
    char err[512];
    attnrt_safetensors *st = NULL;
    write_bytes(q, buf, len);
    if (attnrt_st_open(q, &st, err, sizeof err) == ATTNRT_OK || st != NULL || strstr(err, q) == NULL)
      bad++;
    attnrt_st_close(st);
  }
  check(n > 0 && bad == 0, "all %zu truncations of a good file are errors naming the file", n);
}

int main(void) {
  tmpdir_make("st");
  test_good_file();
  test_misaligned();
  test_hostile_entries();
  test_bad_json();
  test_deep_nesting();
  test_bad_files();
  test_every_truncation();
  tmpdir_remove();
  return test_finish("test_safetensors");
}
