/* generate.c: greedy generation with examples/generate/gpt.attn, a GPT-style
 * decoder with a key/value cache, the way such models are run: the prompt
 * in one call (empty caches, P = 0), then one token per call.  The caches
 * are stacked over the layer array ([4, P, 64] in, [4, P+T, 64] out) and
 * grow in place: with a capacity (attnrt_ctx_set_capacity) each is one
 * buffer of [4, MAXLEN, 64] given as both input and output, and a call
 * writes only its new rows.
 *
 *   attnc gpt.attn -o gpt.o
 *   cc generate.c gpt.o -lattnrt -lm -lpthread -o generate
 *   ./generate [WEIGHTS [EXPECTED]]
 *
 * WEIGHTS (default examples/generate/gpt.safetensors) and EXPECTED
 * (examples/generate/expected.txt: the prompt, and the tokens PyTorch
 * generates from it) come from make_weights.py.  Prints the tokens and the
 * CPU time per token, and fails unless they are PyTorch's. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gpt.h"

enum { LAYERS = 4, D = 64, VOCAB = 256, MAXLEN = 128 };

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

static int argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

/* CPU time, not wall time: on one thread it is the work done, however busy
 * the machine is */
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  const char *weights = argc > 1 ? argv[1] : "examples/generate/gpt.safetensors";
  const char *expected = argc > 2 ? argv[2] : "examples/generate/expected.txt";
  int prompt[MAXLEN], want[MAXLEN];
  FILE *f = fopen(expected, "r");
  if (!f) {
    perror(expected);
    return 1;
  }
  int np = read_line(f, prompt, MAXLEN), nw = read_line(f, want, MAXLEN);
  fclose(f);
  if (np < 1 || nw < 1 || np + nw > MAXLEN) {
    fprintf(stderr, "generate: %s: expected a prompt line and a tokens line\n", expected);
    return 1;
  }

  attnrt_ctx *ctx = attnrt_ctx_new(&gpt_model);
  if (!ctx) return 1;
  /* one thread: a step of this small model is a few hundred microseconds of
   * work, less than handing it to a pool costs */
  attnrt_status st = attnrt_ctx_set_threads(ctx, 1);
  if (st == ATTNRT_OK) st = attnrt_ctx_load_weights(ctx, weights);
  /* The caches: layer l's rows start at l * MAXLEN * D */
  if (st == ATTNRT_OK) st = attnrt_ctx_set_capacity(ctx, "past_k", MAXLEN);
  if (st == ATTNRT_OK) st = attnrt_ctx_set_capacity(ctx, "past_v", MAXLEN);
  size_t cap = (size_t)LAYERS * MAXLEN * D;
  float *kbuf = malloc(cap * sizeof(float)), *vbuf = malloc(cap * sizeof(float));
  float *logits = malloc((size_t)MAXLEN * VOCAB * sizeof(float));
  if (!kbuf || !vbuf || !logits) return 1;

  int32_t ids[MAXLEN], pos[MAXLEN];
  int got[MAXLEN];
  int64_t P = 0, T = np;
  for (int t = 0; t < np; t++) ids[t] = prompt[t], pos[t] = t;
  double t0 = now(), t_prompt = 0;
  for (int n = 0; n < nw && st == ATTNRT_OK; n++) {
    st = gpt(ctx, ids, pos, kbuf, vbuf, logits, kbuf, vbuf, T, P);
    if (st != ATTNRT_OK) break;
    if (n == 0) t_prompt = now() - t0;
    got[n] = argmax(logits + (T - 1) * VOCAB, VOCAB);
    P += T;
    T = 1;
    ids[0] = got[n];
    pos[0] = (int32_t)P;
  }
  double t_all = now() - t0;
  if (st != ATTNRT_OK) {
    fprintf(stderr, "generate: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
    return 1;
  }
  printf("generate: gpt.attn (4 layers, D=%d, 4 heads, vocabulary %d), greedy, weights %s\n", D, VOCAB, weights);
  printf("  prompt: ");
  for (int i = 0; i < np; i++) printf("%d ", prompt[i]);
  printf("\n  tokens: ");
  for (int i = 0; i < nw; i++) printf("%d ", got[i]);
  printf("\n  the prompt (T=%d, P=0) in %.3f ms of CPU time, then %d tokens (T=1) at %.3f ms each\n", np, 1e3 * t_prompt,
         nw - 1, 1e3 * (t_all - t_prompt) / (nw > 1 ? nw - 1 : 1));
  int bad = 0;
  for (int i = 0; i < nw; i++) bad |= got[i] != want[i];
  if (bad) {
    printf("  PyTorch: ");
    for (int i = 0; i < nw; i++) printf("%d ", want[i]);
    printf("\ngenerate: FAIL: the tokens differ from PyTorch's\n");
  } else {
    printf("  the same %d tokens as PyTorch (%s)\n", nw, expected);
  }
  free(kbuf), free(vbuf), free(logits);
  attnrt_ctx_free(ctx);
  return bad;
}
