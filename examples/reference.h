/* reference.h: compare an example's inputs and outputs with PyTorch's.
 *
 * examples/export_weights.py writes, beside each example's weights,
 * weights/NAME.ref.safetensors: the inputs the C program makes and the
 * outputs PyTorch computes for them.  The programs take that file as an
 * optional second argument and check against it:
 *   inputs  exactly (the program and the script must make the same ones);
 *   outputs within |got - want| <= 1e-4 + 1e-4 |want|, the tolerance of
 *           the test suite.
 * It uses only the runtime's safetensors reader (attnrt.h). */
#ifndef EXAMPLES_REFERENCE_H
#define EXAMPLES_REFERENCE_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <attnrt.h>

/* Check the tensor `name` of the reference file against n values at got
 * (f32, or i32 when dtype is ATTNRT_I32).  Prints one line; returns 0 if it
 * matches, 1 if not. */
static inline int reference_check(const attnrt_safetensors *st, const char *name, attnrt_dtype dtype,
                                  const void *got, int64_t n, double atol, double rtol) {
  int i = attnrt_st_find(st, name);
  attnrt_tensor t;
  if (i < 0 || attnrt_st_get(st, i, &t) != ATTNRT_OK || t.dtype != dtype ||
      attnrt_tensor_numel(&t) != n) {
    printf("  reference: %s: missing or of another dtype or size\n", name);
    return 1;
  }
  double worst = 0, worst_excess = 0;
  for (int64_t j = 0; j < n; j++) {
    double a, e;
    if (dtype == ATTNRT_I32) {
      a = ((const int32_t *)got)[j];
      e = ((const int32_t *)t.data)[j];
    } else {
      float fa, fe; /* the mapping need not be aligned for floats */
      memcpy(&fa, (const float *)got + j, sizeof fa);
      memcpy(&fe, (const char *)t.data + j * sizeof fe, sizeof fe);
      a = fa, e = fe;
    }
    double d = fabs(a - e);
    if (!(d <= worst)) worst = d;                 /* NaN counts as worst */
    double excess = d - (atol + rtol * fabs(e));
    if (!(excess <= worst_excess)) worst_excess = excess;
  }
  int ok = worst_excess == 0;
  printf("  %-8s %s PyTorch: max abs diff %.3g over %lld values (atol %g, rtol %g)\n", name,
         ok ? "matches" : "DIFFERS from", worst, (long long)n, atol, rtol);
  return !ok;
}

static inline attnrt_safetensors *reference_open(const char *path) {
  attnrt_safetensors *st = NULL;
  char err[256];
  if (attnrt_st_open(path, &st, err, sizeof err) != ATTNRT_OK) {
    fprintf(stderr, "reference: %s\n", err);
    return NULL;
  }
  printf("compared with %s:\n", path);
  return st;
}

#endif
