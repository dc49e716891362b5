/* sdpa.c: run examples/sdpa.attn from C.
 *
 *   attnc sdpa.attn -o sdpa.o          # writes sdpa.o and sdpa.h
 *   cc sdpa.c sdpa.o -lattnrt -lm -lpthread -o sdpa && ./sdpa
 */
#include <stdio.h>
#include <stdlib.h>

#include "sdpa.h"

enum { T = 4, S = 6, D = 64 };

/* Deterministic inputs without libc's rand(), so every machine prints the
 * same numbers. */
static float next_value(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(void) {
  static float q[T * D], k[S * D], v[S * D], o[T * D];
  unsigned seed = 1;
  for (int i = 0; i < T * D; i++) q[i] = next_value(&seed);
  for (int i = 0; i < S * D; i++) k[i] = next_value(&seed);
  for (int i = 0; i < S * D; i++) v[i] = next_value(&seed);

  attnrt_ctx *ctx = attnrt_ctx_new(&sdpa_model);
  if (!ctx) return 1;
  attnrt_status st = sdpa(ctx, q, k, v, o, T, S);     /* dims in the header's order: T, S */
  if (st != ATTNRT_OK) {
    fprintf(stderr, "sdpa: %s\n", attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return 1;
  }
  printf("sdpa: o = softmax(q k^T / 8) v for T=%d queries, S=%d keys, d=%d\n", T, S, D);
  for (int t = 0; t < T; t++) {
    printf("  o[%d] = [", t);
    for (int j = 0; j < 6; j++) printf("%s%8.5f", j ? ", " : "", o[t * D + j]);
    printf(", ...]\n");
  }

  /* Wrong dims are refused with a message, never a crash. */
  st = sdpa(ctx, q, k, v, o, 0, S);
  printf("  with T=0: status %d (%s): %s\n", st, attnrt_status_str(st), attnrt_ctx_error(ctx));
  attnrt_ctx_free(ctx);
  return 0;
}
