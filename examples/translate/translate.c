/* translate.c: greedy translation with examples/translate/seq2seq.attn, a
 * Bahdanau-style encoder-decoder: the source sentence through `encode` once,
 * then one `step` per target token, each fed the token it picked last and
 * the state the step before returned, until the end token.  Prints the
 * tokens and, for each, the attention weights over the source words as a
 * text heat map: what users of these models look at.
 *
 *   attnc seq2seq.attn -o seq2seq.o
 *   cc translate.c seq2seq.o -lattnrt -lm -lpthread -o translate
 *   ./translate [WEIGHTS [EXPECTED]]
 *
 * WEIGHTS (default examples/translate/seq2seq.safetensors) and EXPECTED
 * (examples/translate/expected.txt: the source sentence and the tokens
 * PyTorch picks) come from make_weights.py; fails unless the tokens are
 * PyTorch's. */
#include <stdio.h>
#include <string.h>

#include "seq2seq.h"

enum { HID = 64, VOCAB = 64, BOS = 1, EOS = 2, MAXLEN = 16, MAXSRC = 64 };

static int read_line(FILE *f, int *v, int max) {
  int n = 0, c;
  while ((c = fgetc(f)) != EOF && c != '\n') {
    ungetc(c, f);
    if (n == max || fscanf(f, "%d", &v[n]) != 1) return -1;
    n++;
    while ((c = fgetc(f)) == ' ') {}
    if (c == '\n' || c == EOF) break;
    ungetc(c, f);
  }
  return n;
}

static int fail(const char *what, attnrt_ctx *ctx) {
  fprintf(stderr, "translate: %s: %s\n", what, attnrt_ctx_error(ctx));
  return 1;
}

int main(int argc, char **argv) {
  const char *weights = argc > 1 ? argv[1] : "examples/translate/seq2seq.safetensors";
  const char *expected = argc > 2 ? argv[2] : "examples/translate/expected.txt";
  int src[MAXSRC], want[MAXLEN];
  FILE *f = fopen(expected, "r");
  if (!f) {
    perror(expected);
    return 1;
  }
  int S = read_line(f, src, MAXSRC), nw = read_line(f, want, MAXLEN);
  fclose(f);
  if (S < 1 || nw < 1) {
    fprintf(stderr, "translate: %s: expected a source line and a tokens line\n", expected);
    return 1;
  }
  /* one file holds both models' params; each context binds its own (and
   * notes the other's as tensors it ignores) */
  attnrt_ctx *enc = attnrt_ctx_new(&encode_model), *dec = attnrt_ctx_new(&step_model);
  if (!enc || !dec) return 1;
  if (attnrt_ctx_load_weights(enc, weights) != ATTNRT_OK) return fail("encoder weights", enc);
  if (attnrt_ctx_load_weights(dec, weights) != ATTNRT_OK) return fail("decoder weights", dec);

  int32_t ids[MAXSRC];
  for (int i = 0; i < S; i++) ids[i] = src[i];
  static float memory[MAXSRC * HID], h[2][HID], c[2][HID], logits[VOCAB], attention[MAXLEN][MAXSRC];
  if (encode(enc, ids, memory, h[0], c[0], S) != ATTNRT_OK) return fail("encode", enc);

  int got[MAXLEN], n = 0, cur = 0;
  int32_t tok = BOS;
  while (n < MAXLEN) {
    if (step(dec, &tok, h[cur], c[cur], memory, logits, h[!cur], c[!cur], attention[n], S) != ATTNRT_OK)
      return fail("step", dec);
    cur = !cur;
    int best = 0;
    for (int v = 1; v < VOCAB; v++)
      if (logits[v] > logits[best]) best = v;
    got[n++] = best;
    tok = best;
    if (best == EOS) break;
  }

  printf("translate: seq2seq.attn (LSTM encoder, additive attention, LSTMCell decoder), greedy, weights %s\n",
         weights);
  printf("  source: ");
  for (int i = 0; i < S; i++) printf("%d ", src[i]);
  printf("\n  tokens: ");
  for (int i = 0; i < n; i++) printf("%d ", got[i]);
  printf("\n  attention of each output token over the source (@: the row's largest weight)\n");
  printf("        ");
  for (int j = 0; j < S; j++) printf("%3d", src[j]);
  printf("\n");
  static const char shade[] = " .:-=+*#%@";
  for (int i = 0; i < n; i++) {
    printf("    %3d ", got[i]);
    float top = 0;
    for (int j = 0; j < S; j++)
      if (attention[i][j] > top) top = attention[i][j];
    for (int j = 0; j < S; j++) {
      int k = top > 0 ? (int)(attention[i][j] / top * 9.0f + 0.5f) : 0;
      if (k > 9) k = 9;
      if (k < 0) k = 0;
      printf("  %c", shade[k]);
    }
    printf("\n");
  }
  int bad = n != nw;
  for (int i = 0; i < n && !bad; i++) bad = got[i] != want[i];
  if (bad) {
    printf("  PyTorch: ");
    for (int i = 0; i < nw; i++) printf("%d ", want[i]);
    printf("\ntranslate: FAIL: the tokens differ from PyTorch's\n");
  } else {
    printf("  the same %d tokens as PyTorch (%s)\n", n, expected);
  }
  attnrt_ctx_free(enc);
  attnrt_ctx_free(dec);
  return bad;
}
