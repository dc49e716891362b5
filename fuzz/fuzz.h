/* fuzz.h: what the fuzz targets share.
 *
 * Each target is one LLVMFuzzerTestOneInput over untrusted bytes.  Built
 * with clang -fsanitize=fuzzer it is a libFuzzer program (fuzz/run.sh);
 * built with replay.c it is a plain program that runs the target over
 * files, which ctest does over fuzz/corpus and fuzz/regress.  A target
 * fails by crashing: a sanitizer report, an abort (internal_error, or
 * FUZZ_CHECK below), a hang. */
#ifndef ATTNC_FUZZ_H
#define ATTNC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep; a broken one aborts with the line. */
#define FUZZ_CHECK(c)                                                              \
  ((c) ? (void)0                                                                   \
       : (fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #c), \
          abort()))

/* A path that reads back the given bytes, for readers that take a path:
 * a memfd rewritten for each input, seen through /proc/self/fd. */
const char *fuzz_bytes_as_file(const uint8_t *data, size_t size);

/* /dev/null opened once: where a target sends diagnostics it makes but
 * does not read. */
FILE *fuzz_devnull(void);

#endif
