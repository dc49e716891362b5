/* encoder.c: run examples/encoder.attn, one post-norm Transformer encoder
 * layer, on weights exported from PyTorch.
 *
 *   attnc encoder.attn -o encoder.o          # writes encoder.o and encoder.h
 *   cc encoder.c encoder.o -lattnrt -lm -lpthread -o encoder
 *   ./encoder [WEIGHTS [REFERENCE]]
 *
 * WEIGHTS (default examples/weights/encoder.safetensors) is the state_dict
 * of torch.nn.TransformerEncoderLayer(d_model=256, nhead=8,
 * dim_feedforward=1024, dropout=0.0, batch_first=True), saved as it is by
 * examples/export_weights.py: its names (self_attn.in_proj_weight,
 * linear1.weight, norm1.bias, ...) are the params of encoder.attn.  With
 * REFERENCE (examples/weights/encoder.ref.safetensors), the output is
 * compared with PyTorch's for the same input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "encoder.h"
#include "reference.h"

enum { T = 20, D = 256 };

/* Deterministic inputs without libc's rand(), so every machine prints the
 * same numbers (export_weights.py makes the same ones). */
static float next_value(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(int argc, char **argv) {
  const char *weights = argc > 1 ? argv[1] : "examples/weights/encoder.safetensors";
  static float x[T * D], y[T * D];
  unsigned seed = 11;
  for (int i = 0; i < T * D; i++) x[i] = next_value(&seed);

  attnrt_ctx *ctx = attnrt_ctx_new(&encoder_model);
  if (!ctx) return 1;
  attnrt_status st = attnrt_ctx_load_weights(ctx, weights);
  if (st == ATTNRT_OK) st = encoder(ctx, x, y, T);       /* dims: T */
  if (st != ATTNRT_OK) {
    fprintf(stderr, "encoder: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return 1;
  }
  printf("encoder: y = norm2(h + linear2(relu(linear1(h)))), h = norm1(x + self_attn(x, x, x, "
         "mask=causal))\n  T=%d tokens, D=%d, 8 heads, weights %s\n", T, D, weights);
  for (int t = 0; t < T; t += t == 1 ? T - 3 : 1) {    /* rows 0, 1, T-2, T-1 */
    printf("  y[%2d] = [", t);
    for (int j = 0; j < 5; j++) printf("%s%8.5f", j ? ", " : "", y[t * D + j]);
    printf(", ...]\n");
  }

  int bad = 0;
  if (argc > 2) {
    attnrt_safetensors *ref = reference_open(argv[2]);
    if (!ref) bad = 1;
    else {
      bad |= reference_check(ref, "x", ATTNRT_F32, x, T * D, 0, 0);
      bad |= reference_check(ref, "y", ATTNRT_F32, y, T * D, 1e-4, 1e-4);
      attnrt_st_close(ref);
    }
  }
  attnrt_ctx_free(ctx);
  return bad;
}
