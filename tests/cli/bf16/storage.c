/* tests/cli weights-dtype-bf16: what a model compiled with --weights-dtype
 * bf16 stores.  argv[1]: tests/cli/bf16.  Exits 0 and prints "ok" when
 *  - the descriptor says bf16 for lin.weight and w, f32 for lin.bias;
 *  - loading the F32 file stores lin.weight and w as exactly the bytes
 *    PyTorch rounded them to (gen_bf16.py), lin.bias as its f32 values;
 *  - binding f32 data rounds it into a copy the context owns (the
 *    caller's buffer may go), to nearest even;
 *  - binding bf16 data borrows it; misaligned bf16 data and an i32 tensor
 *    are refused. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf.h"

static void fail(const char *what, attnrt_ctx *ctx) {
  printf("FAIL: %s%s%s\n", what, ctx ? ": " : "", ctx ? attnrt_ctx_error(ctx) : "");
  exit(1);
}

static void slurp(const char *dir, const char *name, void *buf, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f || fread(buf, 1, n + 1, f) != n) fail(path, NULL);
  fclose(f);
}

static int param(const char *name) {
  for (int64_t i = 0; i < bf_model.n_params; i++)
    if (!strcmp(bf_model.params[i].name, name)) return (int)i;
  fail(name, NULL);
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  uint16_t lw[48], w[160];
  slurp(argv[1], "lin.weight.bf16", lw, sizeof lw);
  slurp(argv[1], "w.bf16", w, sizeof w);
  int plw = param("lin.weight"), pw = param("w"), pb = param("lin.bias");
  if (bf_model.params[plw].dtype != ATTNRT_BF16 || bf_model.params[pw].dtype != ATTNRT_BF16 ||
      bf_model.params[pb].dtype != ATTNRT_F32)
    fail("descriptor dtypes", NULL);
  attnrt_ctx *ctx = attnrt_ctx_new(&bf_model);
  char path[4096];
  snprintf(path, sizeof path, "%s/w32.safetensors", argv[1]);
  if (attnrt_ctx_load_weights(ctx, path) != ATTNRT_OK) fail("load w32", ctx);
  if (memcmp(attnrt_ctx_param_data(ctx, plw), lw, sizeof lw)) fail("lin.weight from F32 is not PyTorch's bf16", NULL);
  if (memcmp(attnrt_ctx_param_data(ctx, pw), w, sizeof w)) fail("w from F32 is not PyTorch's bf16", NULL);
  const float *bias = attnrt_ctx_param_data(ctx, pb);
  if (!(bias[0] > -0.3f && bias[0] < 0.3f && bias[0] != 0)) fail("lin.bias is not f32", NULL);
  /* f32 just below the halfway point rounds down, at it to even */
  float *f = malloc(sizeof(float) * 48);
  for (int k = 0; k < 48; k++) {
    uint32_t bits = (uint32_t)lw[k] << 16 | (k % 2 ? 0x7FFFu : 0x8000u);
    memcpy(&f[k], &bits, 4);
  }
  attnrt_tensor t = {ATTNRT_F32, 2, {6, 8}, f};
  if (attnrt_ctx_bind_param(ctx, "lin.weight", &t) != ATTNRT_OK) fail("bind f32", ctx);
  memset(f, 0xFF, sizeof(float) * 48);   /* the ctx holds its own copy */
  free(f);
  const uint16_t *got = attnrt_ctx_param_data(ctx, plw);
  for (int k = 0; k < 48; k++) {
    uint16_t want = k % 2 || !(lw[k] & 1) ? lw[k] : (uint16_t)(lw[k] + 1);
    if (got[k] != want) {
      printf("FAIL: bound f32 %08x rounds to %04x, expected %04x\n", (unsigned)lw[k] << 16 | (k % 2 ? 0x7FFFu : 0x8000u),
             got[k], want);
      return 1;
    }
  }
  t = (attnrt_tensor){ATTNRT_BF16, 2, {6, 8}, lw};
  if (attnrt_ctx_bind_param(ctx, "lin.weight", &t) != ATTNRT_OK) fail("bind bf16", ctx);
  if (attnrt_ctx_param_data(ctx, plw) != (const void *)lw) fail("bf16 data is not borrowed", NULL);
  t.data = (char *)w + 1;
  if (attnrt_ctx_bind_param(ctx, "lin.weight", &t) != ATTNRT_E_ARG) fail("misaligned bf16 accepted", NULL);
  printf("%s\n", attnrt_ctx_error(ctx));
  t = (attnrt_tensor){ATTNRT_I32, 2, {6, 8}, lw};
  if (attnrt_ctx_bind_param(ctx, "lin.weight", &t) != ATTNRT_E_DTYPE) fail("i32 data accepted", NULL);
  printf("%s\n", attnrt_ctx_error(ctx));
  attnrt_ctx_free(ctx);
  printf("ok\n");
  return 0;
}
