/* mlp.c: run examples/mlp.attn from C, binding its params from memory.
 *
 *   attnc mlp.attn -o mlp.o            # writes mlp.o and mlp.h
 *   cc mlp.c mlp.o -lattnrt -lm -lpthread -o mlp && ./mlp
 *
 * A trained model would load its params with attnrt_ctx_load_weights(ctx,
 * "weights.safetensors"); here they are made up and bound one by one with
 * attnrt_ctx_bind_param, using the names and shapes the header lists. */
#include <stdio.h>
#include <stdlib.h>

#include "mlp.h"

enum { B = 2, T = 3, D = 64, H = 4 * D };

static float next_value(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static attnrt_status bind(attnrt_ctx *ctx, const char *name, float *data, int rank, int64_t d0, int64_t d1) {
  attnrt_tensor t = {ATTNRT_F32, rank, {d0, d1, 0, 0}, data};
  return attnrt_ctx_bind_param(ctx, name, &t);
}

int main(void) {
  static float w1[H * D], b1[H], w2[D * H], b2[D], gamma[D], beta[D];
  static float x[B * T * D], y[B * T * D];
  unsigned seed = 7;
  /* PyTorch's default Linear init scale: U(-1/sqrt(in), 1/sqrt(in)) */
  for (int i = 0; i < H * D; i++) w1[i] = next_value(&seed) * 0.125f;
  for (int i = 0; i < H; i++) b1[i] = next_value(&seed) * 0.125f;
  for (int i = 0; i < D * H; i++) w2[i] = next_value(&seed) * 0.0625f;
  for (int i = 0; i < D; i++) b2[i] = next_value(&seed) * 0.0625f;
  for (int i = 0; i < D; i++) gamma[i] = 1.0f, beta[i] = 0.0f;
  for (int i = 0; i < B * T * D; i++) x[i] = next_value(&seed);

  attnrt_ctx *ctx = attnrt_ctx_new(&mlp_model);
  if (!ctx) return 1;
  attnrt_status st = ATTNRT_OK;
  if (!st) st = bind(ctx, "fc1.weight", w1, 2, H, D);
  if (!st) st = bind(ctx, "fc1.bias", b1, 1, H, 0);
  if (!st) st = bind(ctx, "fc2.weight", w2, 2, D, H);
  if (!st) st = bind(ctx, "fc2.bias", b2, 1, D, 0);
  if (!st) st = bind(ctx, "norm.weight", gamma, 1, D, 0);
  if (!st) st = bind(ctx, "norm.bias", beta, 1, D, 0);
  if (!st) st = mlp(ctx, x, y, B, T);
  if (st != ATTNRT_OK) {
    fprintf(stderr, "mlp: %s\n", attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return 1;
  }
  printf("mlp: y = LayerNorm(x + fc2(gelu(fc1(x)))) for B=%d, T=%d, D=%d\n", B, T, D);
  for (int r = 0; r < B * T; r++) {
    double mean = 0, var = 0;
    for (int j = 0; j < D; j++) mean += y[r * D + j];
    mean /= D;
    for (int j = 0; j < D; j++) var += (y[r * D + j] - mean) * (y[r * D + j] - mean);
    printf("  y[%d][%d] = [%8.5f, %8.5f, %8.5f, ...]  mean %+.1e  var %.4f\n", r / T, r % T, y[r * D],
           y[r * D + 1], y[r * D + 2], mean, var / D);
  }
  attnrt_ctx_free(ctx);
  return 0;
}
