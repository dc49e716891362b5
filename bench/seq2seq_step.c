/* seq2seq_step.c: one decoder step of a Bahdanau seq2seq translator
 * (bench/models/seq2seq_step.attn: hidden 512, embedding 256, vocabulary
 * 8192, additive attention over S encoder outputs, an LSTMCell, the next
 * token's scores), timed on one thread, against the memory floor of the
 * step: the weight matrices and the memory read once, over the read
 * bandwidth decode.c measured in the same run (the first argument).
 *
 *   bench/decode.sh            builds this with the model and runs it
 *   seq2seq_step GBPS S...     prints one line per S:
 *   S2S <S> <median ms> <floor ms> <weight MB> <memory MB> <reps>
 *
 * Weights are random (uniform, scaled by 1/sqrt(fan-in)) and bound with
 * attnrt_ctx_bind_param; the first call lays them out (not timed).  A step
 * reads the state it returned the step before, as a translator does. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "seq2seq_step.h"

enum { H = 512, VOCAB = 8192, REPS = 51 };

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: seq2seq_step GBPS S...\n");
    return 2;
  }
  double bw = atof(argv[1]) * 1e9;
  bench_rng rng;
  bench_rng_seed(&rng, 2027);
  attnrt_ctx *ctx = attnrt_ctx_new(&seq2seq_step_model);
  if (!ctx || attnrt_ctx_set_threads(ctx, 1) != ATTNRT_OK) return 1;
  double weight_bytes = 0;
  for (int64_t i = 0; i < seq2seq_step_model.n_params; i++) {
    const attnrt_tensor_desc *p = &seq2seq_step_model.params[i];
    attnrt_tensor t = {ATTNRT_F32, (int)p->rank, {0}, NULL};
    size_t n = 1;
    for (int d = 0; d < p->rank; d++) t.dims[d] = p->dims[d], n *= (size_t)p->dims[d];
    t.data = bench_rand(&rng, n, 1.0f / sqrtf((float)p->dims[p->rank - 1]));
    if (attnrt_ctx_bind_param(ctx, p->name, &t) != ATTNRT_OK) {
      fprintf(stderr, "seq2seq_step: %s\n", attnrt_ctx_error(ctx));
      return 1;
    }
    if (strcmp(p->name, "tgt_emb.weight")) weight_bytes += (double)n * 4;   /* a step reads one embedding row */
  }
  float *h = bench_rand(&rng, H, 0.5f), *c = bench_rand(&rng, H, 0.5f);
  float *h2 = bench_alloc(H), *c2 = bench_alloc(H), *logits = bench_alloc(VOCAB);
  for (int a = 2; a < argc; a++) {
    int64_t S = atoll(argv[a]);
    float *memory = bench_rand(&rng, (size_t)S * H, 1.0f), *att = bench_alloc((size_t)S);
    int32_t tok[1] = {17};
    double t[REPS + 1];
    for (int r = 0; r <= REPS; r++) {
      double t0 = bench_now();
      attnrt_status st = seq2seq_step(ctx, tok, h, c, memory, logits, h2, c2, att, S);
      t[r] = bench_now() - t0;
      if (st != ATTNRT_OK) {
        fprintf(stderr, "seq2seq_step: %s\n", attnrt_ctx_error(ctx));
        return 1;
      }
      memcpy(h, h2, sizeof(float) * H);
      memcpy(c, c2, sizeof(float) * H);
      tok[0] = (tok[0] * 31 + 7) % VOCAB;
    }
    qsort(t + 1, REPS, sizeof t[0], cmp_double);   /* t[0]: the first call, which lays the weights out */
    double mem_bytes = (double)S * H * 4;
    printf("S2S %lld %.4f %.4f %.1f %.2f %d\n", (long long)S, 1e3 * t[1 + REPS / 2],
           1e3 * (weight_bytes + mem_bytes) / bw, weight_bytes / 1e6, mem_bytes / 1e6, REPS);
    free(memory);
    free(att);
  }
  attnrt_ctx_free(ctx);
  return 0;
}
