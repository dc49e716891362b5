/* randnpy OUT.npy ROWS COLS SEED: a matrix of uniform values in [-1, 1) as
 * .npy, for tests whose inputs are too large to commit. */
#include <stdio.h>
#include <stdlib.h>

#include <attnrt.h>

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: randnpy OUT.npy ROWS COLS SEED\n");
    return 2;
  }
  long rows = atol(argv[2]), cols = atol(argv[3]);
  unsigned state = (unsigned)atol(argv[4]);
  if (rows <= 0 || cols <= 0 || rows > (1L << 20) || cols > (1L << 20) || rows * cols > (1L << 28)) {
    fprintf(stderr, "randnpy: bad size %ld x %ld\n", rows, cols);
    return 2;
  }
  float *data = malloc(sizeof(float) * (size_t)(rows * cols));
  if (!data) return 1;
  for (long i = 0; i < rows * cols; i++) {
    state = state * 1664525u + 1013904223u;
    data[i] = (float)(state >> 8) / 8388608.0f - 1.0f;
  }
  attnrt_tensor t = {ATTNRT_F32, 2, {rows, cols, 0, 0}, data};
  char err[256];
  attnrt_status s = attnrt_npy_write(argv[1], &t, err, sizeof err);
  free(data);
  if (s != ATTNRT_OK) {
    fprintf(stderr, "randnpy: %s\n", err);
    return 1;
  }
  return 0;
}
