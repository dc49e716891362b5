/* bench.c: attnc --bench.  Needs: a JIT-compiled model and its optimized
 * graph.  Guarantees: runs the model on random inputs (those --input
 * gives are read from .npy files; random params unless --weights gives
 * them) with every symbolic dim from --dim or a given input's shape, warms
 * up, times repeated runs and prints the median in ms and the GFLOP/s of
 * the graph's arithmetic (see graph_flops).  Nothing is written to disk. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attnrt.h"
#include "bench.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double dimval(Dim d, const int64_t *dims) { return d.sym < 0 ? (double)d.size : (double)dims[d.sym]; }

static double numel_of(const Type *t, const int64_t *dims, int from, int to) {
  double n = 1;
  for (int i = from; i < to; i++) n *= dimval(t->dims[i], dims);
  return n;
}

/* The FLOPs of the multiply-adds: 2 per multiply-add of a matmul or a
 * recurrent step; for fused attention 2 (dk + dv) per (query, key) pair
 * computed, so a causal mask counts only the pairs it keeps.  Softmax,
 * normalizations and activations are not counted (they are a few percent
 * of the work at the shapes that matter), so GFLOP/s is comparable with
 * a GEMM's. */
double graph_flops(const Graph *g, const int64_t *dims) {
  double f = 0;
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead) continue;
    const Type *t = &n->type;
    switch (n->op) {
    case OP_MATMUL: {
      const Type *a = &g->nodes[n->in[0]].type;
      f += 2 * numel_of(t, dims, 0, t->rank) * dimval(a->dims[a->rank - 1], dims);
      break;
    }
    case OP_ATTENTION: {
      const Type *q = &g->nodes[n->in[0]].type, *k = &g->nodes[n->in[1]].type, *v = &g->nodes[n->in[2]].type;
      double T = dimval(t->dims[t->rank - 2], dims), S = dimval(k->dims[k->rank - 2], dims);
      double pairs = T * S;
      if (n->causal) pairs = T <= S ? T * (T + 1) / 2 : S * (S + 1) / 2 + (T - S) * S;
      f += 2 * pairs * (dimval(q->dims[q->rank - 1], dims) + dimval(v->dims[v->rank - 1], dims)) *
           numel_of(t, dims, 0, t->rank - 2);
      break;
    }
    case OP_LSTM_SEQ: case OP_GRU_SEQ: {
      double H = dimval(t->dims[t->rank - 1], dims);
      f += 2 * numel_of(t, dims, 0, t->rank) * H * (n->op == OP_LSTM_SEQ ? 4 : 3);
      break;
    }
    default: break;
    }
  }
  return f;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) {   /* uniform in [-1, 1) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void *alloc_tensor(const attnrt_tensor *t, float scale) {
  int64_t numel = attnrt_tensor_numel(t);
  if (numel < 0 || (uint64_t)numel > ((uint64_t)1 << 36)) return NULL;
  float *p = malloc((size_t)(numel ? numel : 1) * 4);
  if (!p) return NULL;
  /* i32 tensors are ids: 0 is in range for every table */
  if (t->dtype == ATTNRT_I32) memset(p, 0, (size_t)numel * 4);
  else for (int64_t i = 0; i < numel; i++) p[i] = urand() * scale;
  return p;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* What --bench allocates; freed at exit, also when an error ends it. */
static struct BenchState {
  attnrt_ctx *ctx;
  void **bufs;
  int nbufs;
} bench_state;

static void bench_cleanup(void) {
  for (int i = 0; i < bench_state.nbufs; i++) free(bench_state.bufs[i]);
  attnrt_ctx_free(bench_state.ctx);
  memset(&bench_state, 0, sizeof bench_state);
}

static void *keep(void *p) {
  bench_state.bufs[bench_state.nbufs++] = p;
  return p;
}

void load_weights_or_exit(attnrt_ctx *ctx, const char *path, const char *prefix) {
  if (attnrt_ctx_load_weights_prefix(ctx, path, prefix) != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
  for (const char *w = attnrt_ctx_warnings(ctx); *w;) {
    size_t n = strcspn(w, "\n");
    fprintf(stderr, "attnc: warning: %.*s\n", (int)n, w);
    w += n + (w[n] == '\n');
  }
}

static bool is_sum(const attnrt_model_desc *desc, int64_t k) {
  return desc->dim_sums && desc->dim_sums[k].n_terms > 0;
}

int bench_model(const attnrt_model_desc *desc, const Graph *g, const BenchOptions *bo) {
  atexit(bench_cleanup);
  struct BenchState *bs = &bench_state;
  bs->bufs = NEW_ARRAY(void *, desc->n_params + 2 * desc->n_inputs + desc->n_outputs + 1);
  int64_t dims[MAX_SYMS + 1] = {0};
  for (int i = 0; i < bo->ndims; i++) {
    int64_t k = 0;
    while (k < desc->n_dims && strcmp(desc->dim_names[k], bo->dims[i].name)) k++;
    if (k == desc->n_dims) fatal("model `%s` has no symbolic dim `%s`", desc->name, bo->dims[i].name);
    if (is_sum(desc, k))
      usage_error("--dim %s: `%s` is a sum of other dims, computed from them", bo->dims[i].name, bo->dims[i].name);
    char *end;
    long long v = strtoll(bo->dims[i].path, &end, 10);
    if (*end || end == bo->dims[i].path || v < 1 || v > 2147483647)
      usage_error("--dim %s wants a size from 1 to 2147483647, got '%s'", bo->dims[i].name, bo->dims[i].path);
    dims[k] = v;
  }
  /* --input NAME=FILE.npy: real data for those inputs, and their shapes
   * bind the symbolic dims (which must agree with --dim) */
  attnrt_tensor *given = NEW_ARRAY(attnrt_tensor, desc->n_inputs + 1);
  char err[512];
  for (int i = 0; i < bo->ninputs; i++) {
    int64_t k = 0;
    while (k < desc->n_inputs && strcmp(desc->inputs[k].name, bo->inputs[i].name)) k++;
    if (k == desc->n_inputs) fatal("model `%s` has no input `%s`", desc->name, bo->inputs[i].name);
    const attnrt_tensor_desc *d = &desc->inputs[k];
    attnrt_tensor *t = &given[k];
    const char *from;
    if (attnrt_npy_read_as(bo->inputs[i].path, (int)d->dtype, d->name, &from, t, err, sizeof err) != ATTNRT_OK)
      fatal("input `%s`: %s", d->name, err);
    keep(t->data);
    if (from) fprintf(stderr, "attnc: note: input `%s`: converted %s to %s\n", d->name, from, t->dtype == ATTNRT_F32 ? "f32" : "i32");
    if (t->dtype != (attnrt_dtype)d->dtype || t->rank != (int)d->rank)
      fatal("input `%s`: the file holds %s of rank %d, the model wants %s of rank %d", d->name,
            t->dtype == ATTNRT_F32 ? "f32" : "i32", t->rank, d->dtype == ATTNRT_F32 ? "f32" : "i32", (int)d->rank);
    for (int j = 0; j < t->rank; j++) {
      if (d->dims[j] < 0 && is_sum(desc, -d->dims[j] - 1)) continue;   /* checked by the run */
      int64_t want = d->dims[j] >= 0 ? d->dims[j] : dims[-d->dims[j] - 1];
      if (want && want != t->dims[j])
        fatal("input `%s`: dim %d%s%s%s is %lld in the file, but %lld %s", d->name, j, d->dims[j] < 0 ? " (" : "",
              d->dims[j] < 0 ? desc->dim_names[-d->dims[j] - 1] : "", d->dims[j] < 0 ? ")" : "", (long long)t->dims[j],
              (long long)want, d->dims[j] >= 0 ? "in the model" : "from --dim or another input");
      if (d->dims[j] < 0) dims[-d->dims[j] - 1] = t->dims[j];
    }
  }
  for (int64_t k = 0; k < desc->n_dims; k++)
    if (!dims[k] && !is_sum(desc, k)) usage_error("model `%s` has the symbolic dim `%s`: give its size with --dim %s=N", desc->name,
                              desc->dim_names[k], desc->dim_names[k]);
  if (attnrt_complete_dims(desc, dims, err, sizeof err) != ATTNRT_OK) fatal("%s", err);
  for (int i = 0; i < bo->ninputs; i++) {
    int64_t k = 0;
    while (strcmp(desc->inputs[k].name, bo->inputs[i].name)) k++;
    const attnrt_tensor_desc *d = &desc->inputs[k];
    for (int j = 0; j < d->rank; j++)
      if (d->dims[j] < 0 && given[k].dims[j] != dims[-d->dims[j] - 1])
        fatal("input `%s`: dim %d (%s) is %lld in the file, but %lld from the other dims", d->name, j,
              desc->dim_names[-d->dims[j] - 1], (long long)given[k].dims[j], (long long)dims[-d->dims[j] - 1]);
  }
  attnrt_ctx *ctx = bs->ctx = attnrt_ctx_new(desc);
  if (!ctx) fatal("out of memory");
  if (attnrt_ctx_set_threads(ctx, bo->threads) != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
  if (bo->weights) {
    load_weights_or_exit(ctx, bo->weights, bo->weights_prefix);
  } else if (!desc->embedded) {
    /* random params, scaled like a default initialization (1/sqrt(fan-in))
     * so that activations stay in a normal range */
    for (int64_t k = 0; k < desc->n_params; k++) {
      const attnrt_tensor_desc *d = &desc->params[k];
      /* a bf16 param (--weights-dtype bf16) is given f32, which the runtime rounds */
      attnrt_tensor t = {.dtype = d->dtype == ATTNRT_BF16 ? ATTNRT_F32 : (attnrt_dtype)d->dtype, .rank = (int)d->rank};
      for (int i = 0; i < t.rank; i++) t.dims[i] = d->dims[i];
      double fan = t.rank ? (double)t.dims[t.rank - 1] : 1;
      t.data = keep(alloc_tensor(&t, (float)(1.0 / __builtin_sqrt(fan))));
      if (!t.data) fatal("cannot allocate param `%s`", d->name);
      if (attnrt_ctx_bind_param(ctx, d->name, &t) != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
    }
  }
  void **in = NEW_ARRAY(void *, desc->n_inputs + 1), **out = NEW_ARRAY(void *, desc->n_outputs + 1);
  for (int64_t k = 0; k < desc->n_inputs; k++) {
    const attnrt_tensor_desc *d = &desc->inputs[k];
    attnrt_tensor t = {.dtype = (attnrt_dtype)d->dtype, .rank = (int)d->rank};
    for (int i = 0; i < t.rank; i++) t.dims[i] = d->dims[i] >= 0 ? d->dims[i] : dims[-d->dims[i] - 1];
    if (given[k].data) in[k] = given[k].data;
    else if (!(in[k] = keep(alloc_tensor(&t, 1.0f)))) fatal("cannot allocate input `%s`", d->name);
  }
  for (int64_t k = 0; k < desc->n_outputs; k++) {
    attnrt_tensor t;
    if (attnrt_output_shape(desc, (int)k, dims, &t) != ATTNRT_OK) fatal("output `%s` is too large", desc->outputs[k].name);
    t.dtype = ATTNRT_F32;
    if (!(out[k] = keep(alloc_tensor(&t, 0.0f)))) fatal("cannot allocate output `%s`", desc->outputs[k].name);
  }
  /* Warm up for at least 0.3 s: an idle core needs that long to reach its
   * full clock, and the first run also maps the scratch memory. */
  double t0 = now_s();
  int warm = 0;
  do {
    if (attnrt_run(ctx, in, out, dims) != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
    warm++;
  } while (now_s() - t0 < 0.3 && warm < 1000);
  enum { MAX_REPS = 1000 };
  double times[MAX_REPS];
  int reps = 0;
  double start = now_s();
  while (reps < MAX_REPS && (reps < bo->min_reps || now_s() - start < bo->min_seconds)) {
    double a = now_s();
    attnrt_run(ctx, in, out, dims);
    times[reps++] = now_s() - a;
  }
  qsort(times, (size_t)reps, sizeof times[0], cmp_double);
  double med = times[reps / 2];
  double flops = graph_flops(g, dims);
  printf("%s:", desc->name);
  for (int64_t k = 0; k < desc->n_dims; k++) printf(" %s=%lld", desc->dim_names[k], (long long)dims[k]);
  int threads = attnrt_ctx_threads(ctx);   /* --threads 0 resolved to the CPU count */
  printf(", %d thread%s, %s%s\n", threads, threads == 1 ? "" : "s", bo->fused ? "fused" : "--no-fuse",
         bo->cpu_note ? bo->cpu_note : "");
  printf("  median %.3f ms  (min %.3f, max %.3f, %d runs)", med * 1e3, times[0] * 1e3, times[reps - 1] * 1e3, reps);
  if (flops > 0) printf("  %.3f GFLOP  %.1f GFLOP/s", flops * 1e-9, flops / med * 1e-9);
  printf("\n");
  /* NaN or inf in an output: random inputs can do that (log, sqrt of a
   * negative), and then the time may not be representative */
  for (int64_t k = 0; k < desc->n_outputs; k++) {
    attnrt_tensor t;
    if (attnrt_output_shape(desc, (int)k, dims, &t) != ATTNRT_OK) continue;
    int64_t n = attnrt_tensor_numel(&t);
    const float *p = out[k];
    int64_t i = 0;
    while (i < n && isfinite(p[i])) i++;
    if (i < n)
      fprintf(stderr, "attnc: warning: output `%s` has NaN or infinite values%s\n", desc->outputs[k].name,
              bo->ninputs < desc->n_inputs ? " (random inputs? give real ones with --input)" : "");
  }
  return 0;
}
