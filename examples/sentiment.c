/* sentiment.c: run examples/sentiment.attn (an LSTM, attention pooling over
 * time, a score) on weights exported from PyTorch.
 *
 *   attnc sentiment.attn -o sentiment.o      # writes sentiment.o and sentiment.h
 *   cc sentiment.c sentiment.o -lattnrt -lm -lpthread -o sentiment
 *   ./sentiment [WEIGHTS [REFERENCE]]
 *
 * WEIGHTS (default examples/weights/sentiment.safetensors) is the state_dict
 * of a torch module with the submodules lstm = nn.LSTM(32, 64), score =
 * nn.Linear(64, 1) and head = nn.Linear(64, 1) (examples/export_weights.py):
 * lstm.weight_ih_l0, ..., score.weight, head.bias.  With REFERENCE
 * (examples/weights/sentiment.ref.safetensors), the outputs are compared
 * with PyTorch's for the same input. */
#include <stdio.h>
#include <stdlib.h>

#include "reference.h"
#include "sentiment.h"

enum { T = 12, IN = 32 };

static float next_value(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(int argc, char **argv) {
  const char *weights = argc > 1 ? argv[1] : "examples/weights/sentiment.safetensors";
  static float x[T * IN], p[1], a[T];
  unsigned seed = 5;
  for (int i = 0; i < T * IN; i++) x[i] = next_value(&seed);

  attnrt_ctx *ctx = attnrt_ctx_new(&sentiment_model);
  if (!ctx) return 1;
  attnrt_status st = attnrt_ctx_load_weights(ctx, weights);
  if (st == ATTNRT_OK) st = sentiment(ctx, x, p, a, T);   /* outputs p, weights; dims: T */
  if (st != ATTNRT_OK) {
    fprintf(stderr, "sentiment: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return 1;
  }
  printf("sentiment: an LSTM(32, 64) over T=%d steps, attention pooling, a score\n", T);
  printf("  p = %.6f\n  weights over time =", p[0]);
  double total = 0;
  for (int t = 0; t < T; t++) printf(" %.4f", a[t]), total += a[t];
  printf("  (sum %.6f)\n", total);

  int bad = 0;
  if (argc > 2) {
    attnrt_safetensors *ref = reference_open(argv[2]);
    if (!ref) bad = 1;
    else {
      bad |= reference_check(ref, "x", ATTNRT_F32, x, T * IN, 0, 0);
      bad |= reference_check(ref, "p", ATTNRT_F32, p, 1, 1e-4, 1e-4);
      bad |= reference_check(ref, "weights", ATTNRT_F32, a, T, 1e-4, 1e-4);
      attnrt_st_close(ref);
    }
  }
  attnrt_ctx_free(ctx);
  return bad;
}
