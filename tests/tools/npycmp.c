/* npycmp: compare two .npy files element by element.
 *
 *   npycmp ACTUAL.npy EXPECTED.npy [--atol A] [--rtol R]
 *
 * The dtypes and shapes must be equal; then every element must satisfy
 * |a - e| <= atol + rtol * |e| (defaults 1e-4 and 1e-4).  NaN matches NaN
 * and an infinity matches the same infinity.  Prints the number of
 * mismatches and the worst few with their flat index.
 * Exit 0 if they match, 1 if not, 2 on bad usage or an unreadable file. */
#include "attnrt.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORST_SHOWN 5

typedef struct mismatch {
  int64_t index;
  double actual, expected;
  double excess; /* how far past the tolerance; +inf for NaN or inf mismatches */
} mismatch;

static int usage(const char *msg) {
  if (msg != NULL)
    fprintf(stderr, "npycmp: %s\n", msg);
  fprintf(stderr, "usage: npycmp ACTUAL.npy EXPECTED.npy [--atol A] [--rtol R]\n");
  return 2;
}

static bool parse_tol(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno != 0 || !(v >= 0) || isinf(v))
    return false;
  *out = v;
  return true;
}

static double element(const attnrt_tensor *t, int64_t i) {
  if (t->dtype == ATTNRT_I32)
    return (double)((const int32_t *)t->data)[i];
  return (double)((const float *)t->data)[i];
}

/* How far a is past the tolerance around e: <= 0 means a match. */
static double excess(double a, double e, double atol, double rtol) {
  if (isnan(a) || isnan(e))
    return isnan(a) && isnan(e) ? 0 : INFINITY;
  if (isinf(a) || isinf(e))
    return a == e ? 0 : INFINITY;
  return fabs(a - e) - (atol + rtol * fabs(e));
}

/* Keeps worst[] sorted by decreasing excess, at most WORST_SHOWN long. */
static void note_worst(mismatch *worst, int *n, mismatch m) {
  int pos = *n < WORST_SHOWN ? (*n)++ : WORST_SHOWN;
  if (pos == WORST_SHOWN) {
    if (!(m.excess > worst[WORST_SHOWN - 1].excess))
      return;
    pos = WORST_SHOWN - 1;
  }
  while (pos > 0 && m.excess > worst[pos - 1].excess) {
    worst[pos] = worst[pos - 1];
    pos--;
  }
  worst[pos] = m;
}

static void print_shape(FILE *f, const attnrt_tensor *t) {
  fprintf(f, "%s[", t->dtype == ATTNRT_I32 ? "i32" : "f32");
  for (int i = 0; i < t->rank; i++)
    fprintf(f, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
  fprintf(f, "]");
}

static bool same_shape(const attnrt_tensor *a, const attnrt_tensor *b) {
  if (a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return false;
  return true;
}

static int compare(const attnrt_tensor *a, const attnrt_tensor *e, double atol, double rtol) {
  if (a->dtype != e->dtype || !same_shape(a, e)) {
    printf("npycmp: %s differs: actual ", a->dtype != e->dtype ? "dtype" : "shape");
    print_shape(stdout, a);
    printf(", expected ");
    print_shape(stdout, e);
    printf("\n");
    return 1;
  }
  int64_t n = attnrt_tensor_numel(e), bad = 0;
  mismatch worst[WORST_SHOWN];
  int nworst = 0;
  double max_diff = 0;
  for (int64_t i = 0; i < n; i++) {
    double av = element(a, i), ev = element(e, i);
    double x = excess(av, ev, atol, rtol);
    if (x <= 0) {
      if (!isnan(ev) && !isinf(ev) && fabs(av - ev) > max_diff)
        max_diff = fabs(av - ev);
      continue;
    }
    bad++;
    note_worst(worst, &nworst, (mismatch){i, av, ev, x});
  }
  if (bad == 0) {
    printf("npycmp: ok: %lld elements match (max |diff| %.3g, atol %g, rtol %g)\n",
           (long long)n, max_diff, atol, rtol);
    return 0;
  }
  printf("npycmp: %lld of %lld elements differ (atol %g, rtol %g); worst:\n", (long long)bad,
         (long long)n, atol, rtol);
  for (int i = 0; i < nworst; i++)
    printf("  [%lld] actual %.9g expected %.9g |diff| %.3g\n", (long long)worst[i].index,
           worst[i].actual, worst[i].expected, fabs(worst[i].actual - worst[i].expected));
  return 1;
}

int main(int argc, char **argv) {
  const char *paths[2];
  int npaths = 0;
  double atol = 1e-4, rtol = 1e-4;
  for (int i = 1; i < argc; i++) {
    bool is_atol = strcmp(argv[i], "--atol") == 0, is_rtol = strcmp(argv[i], "--rtol") == 0;
    if (is_atol || is_rtol) {
      if (i + 1 >= argc)
        return usage("missing value after a tolerance option");
      if (!parse_tol(argv[++i], is_atol ? &atol : &rtol))
        return usage("a tolerance must be a finite number >= 0");
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(NULL);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] == '-') {
      return usage("unknown option");
    } else if (npaths == 2) {
      return usage("too many files");
    } else {
      paths[npaths++] = argv[i];
    }
  }
  if (npaths != 2)
    return usage("need an actual and an expected file");
  attnrt_tensor a, e;
  char err[1024];
  if (attnrt_npy_read(paths[0], &a, err, sizeof err) != ATTNRT_OK) {
    fprintf(stderr, "npycmp: %s\n", err);
    return 2;
  }
  if (attnrt_npy_read(paths[1], &e, err, sizeof err) != ATTNRT_OK) {
    fprintf(stderr, "npycmp: %s\n", err);
    attnrt_tensor_free(&a);
    return 2;
  }
  int rc = compare(&a, &e, atol, rtol);
  attnrt_tensor_free(&a);
  attnrt_tensor_free(&e);
  return rc;
}
