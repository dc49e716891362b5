/* bench.h: attnc --bench (bench.c). */
#ifndef ATTNC_BENCH_H
#define ATTNC_BENCH_H

#include "attnrt.h"
#include "ir.h"

typedef struct BenchOptions {
  const NamedPath *dims;   /* --dim NAME=SIZE */
  int ndims;
  const NamedPath *inputs; /* --input NAME=FILE.npy: real data for those */
  int ninputs;
  int threads;
  const char *weights;     /* NULL: random params */
  const char *weights_prefix; /* --weights-prefix, or NULL */
  bool fused;              /* for the report */
  const char *cpu_note;    /* for the report */
  int min_reps;
  double min_seconds;
} BenchOptions;

/* FLOPs of the graph's multiply-adds for these dims. */
double graph_flops(const Graph *g, const int64_t *dims);
/* Loads a weights file into ctx (tensor PREFIX + p for param p; prefix may
 * be NULL) and prints each of its warnings on stderr as an "attnc: warning:"
 * line; an error ends attnc with the runtime's message.  Embedding
 * (--weights), --run and --bench all load weights through it. */
void load_weights_or_exit(attnrt_ctx *ctx, const char *path, const char *prefix);
int bench_model(const attnrt_model_desc *desc, const Graph *g, const BenchOptions *bo);

#endif
