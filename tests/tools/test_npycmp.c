/* test_npycmp: runs the npycmp tool (path in argv[1]) on files made with
 * attnrt_npy_write and checks its exit status and report. */
#define _XOPEN_SOURCE 700
#include "attnrt.h"

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_failures, g_checks;
static char g_dir[256];
static const char *g_tool;
static char g_out[8192];

static void check(bool ok, const char *fmt, ...) {
  va_list ap;
  g_checks++;
  printf("%s ", ok ? "ok  " : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  if (!ok) {
    g_failures++;
    printf("     output: %s\n", g_out);
  }
}

static const char *path(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, 512, "%s/%s", g_dir, name);
  return b;
}

static void write_f32(const char *name, int rank, int64_t d0, int64_t d1, const float *data) {
  attnrt_tensor t = {ATTNRT_F32, rank, {d0, d1}, (void *)data};
  char err[512];
  if (attnrt_npy_write(path(name), &t, err, sizeof err) != ATTNRT_OK) {
    fprintf(stderr, "%s\n", err);
    exit(2);
  }
}

/* Runs the tool with up to 6 arguments; its stdout and stderr go to g_out. */
static int run(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5,
               const char *a6) {
  const char *out = path("tool.out");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    char *argv[] = {(char *)g_tool, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5,
                    (char *)a6, NULL};
    execv(g_tool, argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  FILE *f = fopen(out, "r");
  size_t n = f ? fread(g_out, 1, sizeof g_out - 1, f) : 0;
  g_out[n] = '\0';
  if (f)
    fclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_npycmp PATH-TO-NPYCMP\n");
    return 2;
  }
  g_tool = argv[1];
  snprintf(g_dir, sizeof g_dir, "%s/attnrt-npycmp-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(g_dir) == NULL)
    return 2;

  float e[6] = {1, 2, 3, 4, 5, 6};
  float close[6] = {1, 2, 3, 4, 5, 6.00001f};
  float off[6] = {1, 2.5f, 3, 4, 5, 9};
  float nan_inf[6] = {NAN, INFINITY, -INFINITY, 0, 0, 0};
  float other_inf[6] = {NAN, -INFINITY, -INFINITY, 0, 0, 0};
  float nan_vs_num[6] = {1, INFINITY, -INFINITY, 0, 0, 0};
  write_f32("e.npy", 2, 2, 3, e);
  write_f32("close.npy", 2, 2, 3, close);
  write_f32("off.npy", 2, 2, 3, off);
  write_f32("t.npy", 2, 3, 2, e);
  write_f32("ni.npy", 1, 6, 0, nan_inf);
  write_f32("ni2.npy", 1, 6, 0, other_inf);
  write_f32("ni3.npy", 1, 6, 0, nan_vs_num);
  int32_t ids[6] = {1, 2, 3, 4, 5, 6};
  attnrt_tensor it = {ATTNRT_I32, 2, {2, 3}, ids};
  char err[512];
  attnrt_npy_write(path("i.npy"), &it, err, sizeof err);

  int rc = run(path("e.npy"), path("e.npy"), NULL, NULL, NULL, NULL);
  check(rc == 0 && strstr(g_out, "ok: 6 elements match") != NULL, "identical files match (exit 0)");
  rc = run(path("close.npy"), path("e.npy"), NULL, NULL, NULL, NULL);
  check(rc == 0, "within the default tolerance (exit 0)");
  rc = run(path("off.npy"), path("e.npy"), NULL, NULL, NULL, NULL);
  check(rc == 1 && strstr(g_out, "2 of 6 elements differ") != NULL, "two elements differ (exit 1)");
  const char *first = strstr(g_out, "[5] actual 9 expected 6");
  const char *second = strstr(g_out, "[1] actual 2.5 expected 2");
  check(first != NULL && second != NULL && first < second, "worst mismatch listed first, by flat index");
  rc = run(path("off.npy"), path("e.npy"), "--atol", "3", NULL, NULL);
  check(rc == 0, "--atol 3 accepts them");
  rc = run("--rtol", "0.5", path("off.npy"), path("e.npy"), "--atol", "0");
  check(rc == 0, "--rtol 0.5 before the files accepts them");
  rc = run(path("ni.npy"), path("ni.npy"), NULL, NULL, NULL, NULL);
  check(rc == 0, "NaN matches NaN, inf matches inf");
  rc = run(path("ni2.npy"), path("ni.npy"), NULL, NULL, NULL, NULL);
  check(rc == 1 && strstr(g_out, "1 of 6") != NULL, "-inf does not match +inf");
  rc = run(path("ni3.npy"), path("ni.npy"), NULL, NULL, NULL, NULL);
  check(rc == 1 && strstr(g_out, "1 of 6") != NULL, "a number does not match NaN");
  rc = run(path("ni.npy"), path("ni3.npy"), NULL, NULL, NULL, NULL);
  check(rc == 1 && strstr(g_out, "1 of 6") != NULL, "NaN does not match a number");
  rc = run(path("t.npy"), path("e.npy"), NULL, NULL, NULL, NULL);
  check(rc == 1 && strstr(g_out, "shape differs: actual f32[3, 2], expected f32[2, 3]") != NULL,
        "different shapes (exit 1)");
  rc = run(path("i.npy"), path("e.npy"), NULL, NULL, NULL, NULL);
  check(rc == 1 && strstr(g_out, "dtype differs") != NULL, "different dtypes (exit 1)");
  rc = run(path("i.npy"), path("i.npy"), NULL, NULL, NULL, NULL);
  check(rc == 0, "i32 files compare too");
  rc = run(path("absent.npy"), path("e.npy"), NULL, NULL, NULL, NULL);
  check(rc == 2 && strstr(g_out, "cannot open") != NULL, "a missing file (exit 2)");
  rc = run(path("e.npy"), NULL, NULL, NULL, NULL, NULL);
  check(rc == 2 && strstr(g_out, "usage") != NULL, "one file only (exit 2)");
  rc = run(path("e.npy"), path("e.npy"), "--atol", "x", NULL, NULL);
  check(rc == 2, "a bad --atol value (exit 2)");
  rc = run(path("e.npy"), path("e.npy"), "--rtol", "-1", NULL, NULL);
  check(rc == 2, "a negative --rtol (exit 2)");
  rc = run(path("e.npy"), path("e.npy"), "--atol", NULL, NULL, NULL);
  check(rc == 2, "--atol without a value (exit 2)");
  rc = run(path("e.npy"), path("e.npy"), "--frob", NULL, NULL, NULL);
  check(rc == 2, "an unknown option (exit 2)");

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
  printf("test_npycmp: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
