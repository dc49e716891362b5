/* test_npy: attnrt_npy_write / attnrt_npy_read round trips, files written by
 * hand in every accepted form, hostile files, and atomic writes. */
#include "test_util.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <math.h>

/* An npy file of the given version whose header is dict (padded with
 * spaces and a newline as numpy does), then data. */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t dlen) {
  bytes b = {0};
  size_t prefix = major == 1 ? 10 : 12;
  size_t hlen = strlen(dict) + 1;
  while ((prefix + hlen) % 64 != 0)
    hlen++;
  put(&b, "\x93NUMPY", 6);
  unsigned char ver[2] = {(unsigned char)major, 0};
  put(&b, ver, 2);
  unsigned char len[4] = {hlen & 0xFF, (hlen >> 8) & 0xFF, (hlen >> 16) & 0xFF, hlen >> 24};
  put(&b, len, major == 1 ? 2 : 4);
  put_str(&b, dict);
  for (size_t i = strlen(dict); i + 1 < hlen; i++)
    put_str(&b, " ");
  put_str(&b, "\n");
  put(&b, data, dlen);
  write_bytes(path, b.p, b.len);
  free(b.p);
}

static bool same_tensor(const attnrt_tensor *a, const attnrt_tensor *b) {
  if (a->dtype != b->dtype || a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return false;
  int64_t n = attnrt_tensor_numel(a);
  return n == 0 || memcmp(a->data, b->data, (size_t)n * 4) == 0;
}

static void round_trip(const char *label, attnrt_tensor t) {
  char err[512] = "";
  const char *p = tpath("rt.npy");
  attnrt_status s = attnrt_npy_write(p, &t, err, sizeof err);
  check(s == ATTNRT_OK, "round trip %s: write (%s)", label, err);
  attnrt_tensor back;
  s = attnrt_npy_read(p, &back, err, sizeof err);
  check(s == ATTNRT_OK && same_tensor(&t, &back), "round trip %s: read back equal (%s)", label, err);
  check(back.data == NULL || (uintptr_t)back.data % 64 == 0, "round trip %s: data 64-byte aligned",
        label);
  attnrt_tensor_free(&back);
  check(back.data == NULL, "round trip %s: attnrt_tensor_free clears data", label);
}

static void test_round_trips(void) {
  float f[12];
  for (int i = 0; i < 12; i++)
    f[i] = (float)i * 0.5f - 2.0f;
  f[3] = INFINITY;
  f[4] = -0.0f;
  f[5] = NAN;
  int32_t ids[5] = {0, -1, 2147483647, (int32_t)-2147483647 - 1, 42};
  round_trip("f32 [3, 4]", (attnrt_tensor){ATTNRT_F32, 2, {3, 4}, f});
  round_trip("i32 [5]", (attnrt_tensor){ATTNRT_I32, 1, {5}, ids});
  round_trip("f32 scalar", (attnrt_tensor){ATTNRT_F32, 0, {0}, f});
  round_trip("f32 [1, 2, 3, 2]", (attnrt_tensor){ATTNRT_F32, 4, {1, 2, 3, 2}, f});
  round_trip("f32 [0, 3]", (attnrt_tensor){ATTNRT_F32, 2, {0, 3}, NULL});

  /* The file itself: version 1.0, header padded to 64 bytes, numpy's dict. */
  char err[512] = "";
  attnrt_tensor t = {ATTNRT_F32, 2, {3, 4}, f};
  const char *p = tpath("layout.npy");
  attnrt_npy_write(p, &t, err, sizeof err);
  FILE *fp = fopen(p, "rb");
  unsigned char buf[256] = {0};
  size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
  if (fp)
    fclose(fp);
  size_t hlen = buf[8] | (size_t)buf[9] << 8;
  check(n == 128 + 48 && memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0 && 10 + hlen == 128,
        "write: version 1.0 with the data at byte 128 (a multiple of 64)");
  check(memcmp(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 59) == 0 &&
            buf[127] == '\n' && buf[69] == ' ',
        "write: numpy's header dict ending in a newline");
  attnrt_tensor one = {ATTNRT_I32, 1, {5}, ids};
  attnrt_npy_write(p, &one, err, sizeof err);
  fp = fopen(p, "rb");
  n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
  if (fp)
    fclose(fp);
  check(n == 128 + 20 && strstr((char *)buf + 10, "'shape': (5,), }") != NULL &&
            strstr((char *)buf + 10, "'<i4'") != NULL,
        "write: a rank-1 shape is written as (5,)");
}

/* Headers numpy (and older numpy) write, beyond the canonical one. */
static void test_accepted_forms(void) {
  float f[6] = {1, 2, 3, 4, 5, 6};
  char err[512] = "";
  attnrt_tensor t;
  const char *p = tpath("forms.npy");
  struct { const char *label; int major; const char *dict; int rank; int64_t d0; } cases[] = {
    {"version 2.0", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2},
    {"version 3.0", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2},
    {"keys in another order", 1, "{'shape': (6,), 'fortran_order': False, 'descr': '<f4'}", 1, 6},
    {"Python 2 long ints", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 2},
    {"double quotes", 1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}", 1, 6},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_npy_raw(p, cases[i].major, cases[i].dict, f, sizeof f);
    attnrt_status s = attnrt_npy_read(p, &t, err, sizeof err);
    check(s == ATTNRT_OK && t.rank == cases[i].rank && t.dims[0] == cases[i].d0 &&
              ((float *)t.data)[5] == 6.0f,
          "read %s (%s)", cases[i].label, err);
    attnrt_tensor_free(&t);
  }
}

static void expect_fail(const char *label, const char *path, attnrt_status want, const char *frag) {
  char err[512] = "";
  attnrt_tensor t;
  memset(&t, 0xAB, sizeof t);
  attnrt_status s = attnrt_npy_read(path, &t, err, sizeof err);
  check_err_has(label, s, want, err, frag, NULL);
  check(t.data == NULL, "%s: no data is returned", label);
}

static void test_hostile(void) {
  /* 12 elements for shape (3, 4), plus room for trailing bytes. */
  float f[16] = {0};
  const size_t fsz = 48;
  char want[1024], err[512];
  const char *p = tpath("bad.npy");
  const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";

  write_npy_raw(p, 1, good, f, 40);
  attnrt_tensor t;
  attnrt_status s = attnrt_npy_read(p, &t, err, sizeof err);
  snprintf(want, sizeof want, "%s: truncated: 40 bytes of data, but <f4 of shape (3, 4) needs 48", p);
  check_err("truncated data: exact message", s, ATTNRT_E_FORMAT, err, want);

  write_npy_raw(p, 1, good, f, fsz + 4);
  s = attnrt_npy_read(p, &t, err, sizeof err);
  snprintf(want, sizeof want, "%s: 4 trailing bytes after the data of shape (3, 4)", p);
  check_err("trailing bytes: exact message", s, ATTNRT_E_FORMAT, err, want);
  attnrt_tensor_free(&t);

  write_npy_raw(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", f, fsz);
  s = attnrt_npy_read(p, &t, err, sizeof err);
  snprintf(want, sizeof want, "%s: dtype '>f4' is not supported (only '<f4' and '<i4')", p);
  check_err("big-endian dtype names it", s, ATTNRT_E_DTYPE, err, want);

  write_npy_raw(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", f, 48);
  expect_fail("f64 dtype", p, ATTNRT_E_DTYPE, "'<f8'");
  write_npy_raw(p, 1, "{'descr': '|f4', 'fortran_order': False, 'shape': (12,), }", f, 48);
  expect_fail("'|f4' dtype", p, ATTNRT_E_DTYPE, "'|f4'");
  write_npy_raw(p, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (12,), }", f, 48);
  expect_fail("structured dtype", p, ATTNRT_E_DTYPE, "structured");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", f, fsz);
  expect_fail("Fortran order refused", p, ATTNRT_E_FORMAT, "Fortran-order");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (4294967296, 4294967296, 4294967296), }", f, fsz);
  expect_fail("shape whose size overflows", p, ATTNRT_E_FORMAT, "is too large");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (99999999999999999999,), }", f, fsz);
  expect_fail("dim beyond int64", p, ATTNRT_E_FORMAT, "dim too large");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 12), }",
                f, fsz);
  expect_fail("rank 5", p, ATTNRT_E_SHAPE, "rank above 4");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }", f, fsz);
  expect_fail("negative dim", p, ATTNRT_E_FORMAT, "non-negative");
  write_npy_raw(p, 1, "{'descr': '<f4', 'shape': (3, 4), }", f, fsz);
  expect_fail("missing fortran_order", p, ATTNRT_E_FORMAT, "no 'fortran_order'");
  write_npy_raw(p, 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}",
                f, fsz);
  expect_fail("duplicate key", p, ATTNRT_E_FORMAT, "duplicate key 'descr'");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}", f,
                fsz);
  expect_fail("unknown key", p, ATTNRT_E_FORMAT, "unknown key 'x'");
  write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)} junk", f, fsz);
  expect_fail("junk after the dict", p, ATTNRT_E_FORMAT, "after the header dict");
  write_npy_raw(p, 1, "{'descr': '<f4", f, fsz);
  expect_fail("unterminated string", p, ATTNRT_E_FORMAT, "bad npy header");
  write_npy_raw(p, 4, good, f, fsz);
  expect_fail("version 4.0", p, ATTNRT_E_FORMAT, "unsupported npy version 4.0");

  unsigned char raw[64];
  memset(raw, ' ', sizeof raw);
  memcpy(raw, "\x93NUMPX\x01\x00\x36\x00", 10);
  write_bytes(p, raw, sizeof raw);
  expect_fail("bad magic", p, ATTNRT_E_FORMAT, "bad magic");
  memcpy(raw, "\x93NUMPY\x01\x00\xff\x7f", 10);
  write_bytes(p, raw, sizeof raw);
  snprintf(want, sizeof want, "%s: header length 32767 runs past the end of the file (64 bytes)", p);
  s = attnrt_npy_read(p, &t, err, sizeof err);
  check_err("header length past EOF: exact message", s, ATTNRT_E_FORMAT, err, want);
  memcpy(raw, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
  write_bytes(p, raw, sizeof raw);
  expect_fail("v2 header length 4 GiB past EOF", p, ATTNRT_E_FORMAT, "runs past the end");
  write_bytes(p, raw, 7);
  expect_fail("file of 7 bytes", p, ATTNRT_E_FORMAT, "too short");
  write_bytes(p, raw, 0);
  expect_fail("empty file", p, ATTNRT_E_FORMAT, "too short");
  expect_fail("missing file", tpath("nope.npy"), ATTNRT_E_IO, "cannot open");
  expect_fail("a directory", g_tmpdir, ATTNRT_E_IO, "not a regular file");
  const char *fifo = tpath("fifo.npy");
  if (mkfifo(fifo, 0600) == 0)
    expect_fail("a FIFO (must not block)", fifo, ATTNRT_E_IO, "not a regular file");

  s = attnrt_npy_read(NULL, &t, err, sizeof err);
  check(s == ATTNRT_E_ARG, "NULL path is ATTNRT_E_ARG");
  s = attnrt_npy_read(p, NULL, NULL, 0);
  check(s == ATTNRT_E_ARG, "NULL tensor, NULL err buffer is ATTNRT_E_ARG");
}

static void test_write_failures(void) {
  char err[512] = "", want[1024];
  float f[4] = {1, 2, 3, 4};
  attnrt_tensor t = {ATTNRT_F32, 1, {4}, f};

  /* A directory is refused before anything is written. */
  const char *dir = tpath("adir.npy");
  mkdir(dir, 0755);
  attnrt_status s = attnrt_npy_write(dir, &t, err, sizeof err);
  check_err_has("write over a directory fails", s, ATTNRT_E_IO, err, "Is a directory", NULL);
  struct stat sb;
  check(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "the destination directory is untouched");
  check(count_files_with(".attnc-") == 0, "no temporary file is left behind");

  const char *nodir = tpath("missing/x.npy");
  s = attnrt_npy_write(nodir, &t, err, sizeof err);
  snprintf(want, sizeof want, "cannot write %s: No such file or directory", nodir);
  check_err("write into a missing directory: exact message", s, ATTNRT_E_IO, err, want);

  /* Overwriting replaces the old file as a whole. */
  const char *p = tpath("over.npy");
  attnrt_npy_write(p, &t, err, sizeof err);
  float g[2] = {7, 8};
  attnrt_tensor u = {ATTNRT_F32, 1, {2}, g};
  s = attnrt_npy_write(p, &u, err, sizeof err);
  attnrt_tensor back;
  attnrt_status r = attnrt_npy_read(p, &back, err, sizeof err);
  check(s == ATTNRT_OK && r == ATTNRT_OK && back.dims[0] == 2 && ((float *)back.data)[1] == 8.0f,
        "overwrite replaces the file");
  attnrt_tensor_free(&back);
  check(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0644, "new file has mode 0666 & ~umask (0644)");
  check(count_files_with(".attnc-") == 0, "no temporary file after a good write");

  attnrt_tensor bad = {ATTNRT_F32, 1, {4}, NULL};
  s = attnrt_npy_write(p, &bad, err, sizeof err);
  check_err_has("write with NULL data", s, ATTNRT_E_ARG, err, "data is NULL", NULL);
  bad = (attnrt_tensor){ATTNRT_F32, 5, {1, 1, 1, 1}, f};
  check(attnrt_npy_write(p, &bad, err, sizeof err) == ATTNRT_E_ARG, "write rank 5 is ATTNRT_E_ARG");
  bad = (attnrt_tensor){ATTNRT_F32, 2, {-1, 4}, f};
  check(attnrt_npy_write(p, &bad, err, sizeof err) == ATTNRT_E_ARG, "write a negative dim is ATTNRT_E_ARG");
  bad = (attnrt_tensor){ATTNRT_F32, 3, {INT64_C(1) << 40, INT64_C(1) << 40, 16}, f};
  check(attnrt_npy_write(p, &bad, err, sizeof err) == ATTNRT_E_LIMIT, "write an overflowing shape is ATTNRT_E_LIMIT");
  bad = (attnrt_tensor){(attnrt_dtype)7, 1, {4}, f};
  check(attnrt_npy_write(p, &bad, err, sizeof err) == ATTNRT_E_ARG, "write a bad dtype is ATTNRT_E_ARG");
  r = attnrt_npy_read(p, &back, err, sizeof err);
  check(r == ATTNRT_OK && back.dims[0] == 2, "failed writes leave the destination untouched");
  attnrt_tensor_free(&back);
}

/* Only a regular file is replaced by a rename: a link's target is, and a
 * device or a FIFO is written in place (docs/security.md). */
static void test_write_special(void) {
  char err[512] = "";
  float f[4] = {1, 2, 3, 4};
  attnrt_tensor t = {ATTNRT_F32, 1, {4}, f};
  attnrt_tensor back;
  struct stat sb;

  const char *real = tpath("real.npy"), *link = tpath("link.npy");
  check(symlink("real.npy", link) == 0, "make a symbolic link");
  attnrt_status s = attnrt_npy_write(link, &t, err, sizeof err);
  check(s == ATTNRT_OK && lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode), "a link written through stays a link (%s)", err);
  check(attnrt_npy_read(real, &back, err, sizeof err) == ATTNRT_OK && back.dims[0] == 4 && ((float *)back.data)[3] == 4,
        "the link's target holds the data");
  attnrt_tensor_free(&back);

  const char *fifo = tpath("out.fifo");
  int rfd = mkfifo(fifo, 0600) == 0 ? open(fifo, O_RDONLY | O_NONBLOCK) : -1;
  check(rfd >= 0, "make a FIFO and open its read end");
  s = attnrt_npy_write(fifo, &t, err, sizeof err);
  unsigned char got[256];
  ssize_t n = read(rfd, got, sizeof got);
  check(s == ATTNRT_OK && n == 128 + 16 && memcmp(got, "\x93NUMPY", 6) == 0 && memcmp(got + 128, f, 16) == 0,
        "a FIFO is written in place: the reader gets the file (%s)", err);
  check(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO is still a FIFO");
  close(rfd);

  const char *dev = tpath("null");
  if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0) {
    s = attnrt_npy_write(dev, &t, err, sizeof err);
    check(s == ATTNRT_OK && stat(dev, &sb) == 0 && S_ISCHR(sb.st_mode),
          "a character device (a copy of /dev/null) stays a device (%s)", err);
  } else {
    printf("skip a character device: mknod needs root\n");
  }
  check(count_files_with(".attnc-") == 0, "no temporary file is left behind");
}

/* A name near NAME_MAX still gets a temporary file beside it. */
static void test_write_long_name(void) {
  char err[512] = "", name[256];
  float f[1] = {5};
  attnrt_tensor t = {ATTNRT_F32, 1, {1}, f};
  memset(name, 'a', 251);
  memcpy(name + 251, ".npy", 5);   /* 255 bytes */
  attnrt_status s = attnrt_npy_write(tpath(name), &t, err, sizeof err);
  check(s == ATTNRT_OK, "write a file whose name is 255 bytes (%s)", err);
}

int main(void) {
  umask(022);
  tmpdir_make("npy");
  test_round_trips();
  test_accepted_forms();
  test_hostile();
  test_write_failures();
  test_write_special();
  test_write_long_name();
  tmpdir_remove();
  return test_finish("test_npy");
}
