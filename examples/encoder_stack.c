/* encoder_stack.c: run examples/encoder_stack.attn, a stack of 6 post-norm
 * Transformer encoder layers and a final LayerNorm, on the state_dict of
 * torch.nn.TransformerEncoder saved as it is.
 *
 *   attnc encoder_stack.attn -o encoder_stack.o
 *   cc encoder_stack.c encoder_stack.o -lattnrt -lm -lpthread -o encoder_stack
 *   ./encoder_stack [WEIGHTS [REFERENCE [OUTPUT]]]
 *
 * WEIGHTS (default examples/weights/encoder_stack.safetensors) is the
 * state_dict that examples/encoder_stack.py saves: F32, or its bfloat16 copy
 * (encoder_stack.bf16.safetensors, converted to f32 as it loads).  With
 * REFERENCE (examples/weights/encoder_stack.ref.safetensors) the output is
 * compared with PyTorch's: OUTPUT names the reference tensor, `y` (the F32
 * weights, the default) or `y_bf16` (the weights rounded to bfloat16). */
#include <stdio.h>
#include <string.h>

#include "encoder_stack.h"
#include "reference.h"

enum { T = 16, D = 64 };

/* The examples' deterministic inputs (export_weights.py's lcg_floats). */
static float next_value(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(int argc, char **argv) {
  const char *weights = argc > 1 ? argv[1] : "examples/weights/encoder_stack.safetensors";
  const char *want = argc > 3 ? argv[3] : "y";
  static float x[T * D], y[T * D];
  unsigned seed = 13;
  for (int i = 0; i < T * D; i++) x[i] = next_value(&seed);

  attnrt_ctx *ctx = attnrt_ctx_new(&encoder_stack_model);
  if (!ctx) return 1;
  attnrt_status st = attnrt_ctx_load_weights(ctx, weights);
  if (st == ATTNRT_OK) st = encoder_stack(ctx, x, y, T);
  if (st != ATTNRT_OK) {
    fprintf(stderr, "encoder_stack: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return 1;
  }
  printf("encoder_stack: 6 encoder layers (D=%d, 4 heads, FF=256) and a LayerNorm, T=%d, weights %s\n", D, T,
         weights);
  for (int t = 0; t < T; t += t == 1 ? T - 3 : 1) {
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
      bad |= reference_check(ref, want, ATTNRT_F32, y, T * D, 1e-4, 1e-4);
      attnrt_st_close(ref);
    }
  }
  attnrt_ctx_free(ctx);
  return bad;
}
