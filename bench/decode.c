/* decode.c: one GPT-style decoding step (bench/models/decode.attn: 4
 * layers, D = 512, 8 heads, a vocabulary of 8192; T = 1 new token after P
 * cached positions), timed on one thread, against the memory floor of the
 * step: the bytes it must read (every weight matrix once, the caches once)
 * over the read bandwidth this program measures on the same machine.
 *
 *   bench/decode.sh            builds this with the model and runs it
 *   decode P...                prints one line per P:
 *   DECODE <P> <median ms> <floor ms> <weight MB> <cache MB> <read GB/s> <reps> <cold median ms>
 *
 * The caches, stacked over the layer array ([4, P, 512]), are given in
 * the capacity form (c-api.md, "Stacked caches": capacity P+1, each cache
 * output its input's buffer), so a step writes one row per layer and
 * copies none.  "cold" steps run after reading a buffer larger than the
 * last-level cache, so that they too read every weight from memory, as
 * the floor assumes (a warm step finds part of the weights in cache).  Weights are random (uniform, scaled
 * by 1/sqrt(fan-in)) and bound with attnrt_ctx_bind_param; the first call
 * lays them out (not timed).  Built from a model compiled with
 * --weights-dtype bf16, the floor counts the bf16 weights at 2 bytes. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "decode.h"

enum { LAYERS = 4, D = 512, VOCAB = 8192 };

/* Reads 256 MiB (not timed): the next step finds nothing in the caches. */
static void evict(const float *junk, size_t n) {
  volatile float sink = 0;
  float s[16] = {0};
  for (size_t i = 0; i < n; i += 16)
    for (int j = 0; j < 16; j++) s[j] += junk[i + j];
  for (int j = 0; j < 16; j++) sink += s[j];
  (void)sink;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Bytes per second that one thread reads from memory: the best of a few
 * sums over a buffer far larger than the caches, with 8 vectors' worth of
 * independent sums so that the adds' latency is not what limits it. */
static double read_bandwidth(void) {
  size_t n = (size_t)512 << 20 >> 2;   /* 512 MiB of floats */
  float *a = bench_alloc(n);
  for (size_t i = 0; i < n; i++) a[i] = (float)(i & 1023);
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = bench_now();
    float s[128] = {0};
    for (size_t i = 0; i < n; i += 128)
      for (int j = 0; j < 128; j++) s[j] += a[i + j];
    double dt = bench_now() - t0;
    for (int j = 0; j < 128; j++) sink += s[j];
    if ((double)n * 4 / dt > best) best = (double)n * 4 / dt;
  }
  (void)sink;
  free(a);
  return best;
}

int main(int argc, char **argv) {
  bench_rng rng;
  bench_rng_seed(&rng, 2026);
  attnrt_ctx *ctx = attnrt_ctx_new(&decode_model);
  if (!ctx || attnrt_ctx_set_threads(ctx, 1) != ATTNRT_OK) return 1;
  /* random weights; the matrices (rank 2 but the two embedding tables) are
   * what a step reads in full */
  double weight_bytes = 0;
  for (int64_t i = 0; i < decode_model.n_params; i++) {
    const attnrt_tensor_desc *p = &decode_model.params[i];
    attnrt_tensor t = {ATTNRT_F32, (int)p->rank, {0}, NULL};
    size_t n = 1;
    for (int d = 0; d < p->rank; d++) t.dims[d] = p->dims[d], n *= (size_t)p->dims[d];
    float *w = bench_alloc(n);
    float scale = 1.0f / sqrtf((float)p->dims[p->rank - 1]);
    for (size_t k = 0; k < n; k++) w[k] = bench_uniform(&rng, scale);
    if (p->rank == 1 && strstr(p->name, "ln") && strstr(p->name, "weight"))
      for (size_t k = 0; k < n; k++) w[k] += 1.0f;
    t.data = w;
    if (attnrt_ctx_bind_param(ctx, p->name, &t) != ATTNRT_OK) {
      fprintf(stderr, "decode: %s\n", attnrt_ctx_error(ctx));
      return 1;
    }
    /* a model compiled with --weights-dtype bf16 stores its matrices in
     * bf16 (the runtime rounds the f32 data bound here) */
    bool embedding = !strcmp(p->name, "tok.weight") || !strcmp(p->name, "wpe.weight");
    if (!embedding) weight_bytes += (double)n * (p->dtype == ATTNRT_BF16 ? 2 : 4);
  }
  double bw = read_bandwidth();
  float *logits = bench_alloc(VOCAB);
  size_t njunk = (size_t)256 << 20 >> 2;
  float *junk = bench_alloc(njunk);
  for (size_t i = 0; i < njunk; i++) junk[i] = (float)(i & 255);
  for (int a = 1; a < argc; a++) {
    int64_t P = atoll(argv[a]);
    /* [4, P+1, 512] each: room for the step's row in every layer */
    float *kc = bench_alloc((size_t)LAYERS * (P + 1) * D), *vc = bench_alloc((size_t)LAYERS * (P + 1) * D);
    for (size_t k = 0; k < (size_t)LAYERS * (P + 1) * D; k++)
      kc[k] = bench_uniform(&rng, 1.0f), vc[k] = bench_uniform(&rng, 1.0f);
    if (attnrt_ctx_set_capacity(ctx, "past_k", P + 1) != ATTNRT_OK ||
        attnrt_ctx_set_capacity(ctx, "past_v", P + 1) != ATTNRT_OK) {
      fprintf(stderr, "decode: %s\n", attnrt_ctx_error(ctx));
      return 1;
    }
    int32_t ids[1] = {17}, pos[1] = {(int32_t)P};
    enum { REPS = 25, COLD = 9 };
    double t[REPS + 1], tc[COLD];
    for (int r = 0; r <= REPS + COLD; r++) {
      if (r > REPS) evict(junk, njunk);
      double t0 = bench_now();
      attnrt_status st = decode(ctx, ids, pos, kc, vc, logits, kc, vc, 1, P);
      double dt = bench_now() - t0;
      if (r <= REPS) t[r] = dt;
      else tc[r - REPS - 1] = dt;
      if (st != ATTNRT_OK) {
        fprintf(stderr, "decode: %s\n", attnrt_ctx_error(ctx));
        return 1;
      }
    }
    qsort(t + 1, REPS, sizeof t[0], cmp_double);   /* t[0]: the first call, which lays the weights out */
    qsort(tc, COLD, sizeof tc[0], cmp_double);
    double cache_bytes = 2.0 * LAYERS * (double)P * D * 4;
    printf("DECODE %lld %.4f %.4f %.1f %.1f %.2f %d %.4f\n", (long long)P, 1e3 * t[1 + REPS / 2],
           1e3 * (weight_bytes + cache_bytes) / bw, weight_bytes / 1e6, cache_bytes / 1e6, bw / 1e9, REPS,
           1e3 * tc[COLD / 2]);
    free(kc), free(vc);
  }
  free(junk);
  attnrt_ctx_free(ctx);
  return 0;
}
