/* concurrent_run.c: one compiled model run from several threads at once,
 * each on a context of its own, must give the bits a run alone gives.
 *
 *   cc -fsanitize=thread -DMODEL_DESC=encoder_model -I runtime/include \
 *      concurrent_run.c encoder.o runtime/src/ *.c -lm -lpthread -o concurrent_run
 *   concurrent_run DIR
 *
 * DIR holds in.<input>.npy for every input and weights.safetensors if the
 * model has params (a tests/run or tests/golden folder).  First, for each
 * pool size P in {1, 2}, one context with P threads runs the model alone:
 * that is the reference.  Then, ROUNDS times, APP_THREADS threads start at
 * once; each makes its own context (its own weights mapping, scratch
 * memory and pool of P threads, P alternating between rounds), runs the
 * model RUNS times on the shared, read-only inputs into its own outputs,
 * and compares every output with the reference bit for bit.  Built with
 * ThreadSanitizer it also checks that the runtime (contexts, pools,
 * weights, error messages) has no data race; the generated code itself is
 * not instrumented. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnrt.h"

#ifndef MODEL_DESC
#error "compile with -DMODEL_DESC=<model>_model"
#endif
extern const attnrt_model_desc MODEL_DESC;

#define APP_THREADS 4
#define ROUNDS 3
#define RUNS 3

static const attnrt_model_desc *model = &MODEL_DESC;
static const char *weights_path;      /* NULL when the model has no params */
static attnrt_tensor *in;               /* the inputs as read */
static void **in_ptr;                 /* their data, shared by every thread, read-only */
static int64_t dims[16];
static attnrt_tensor *out_shape;        /* per output: dtype, rank, dims */
static int64_t *out_numel;
static float *ref[3];                 /* [P]: every output one after another */
static int64_t total;                 /* elements of all outputs */

static void die(const char *what, const char *msg) {
  fprintf(stderr, "concurrent_run: %s: %s\n", what, msg);
  exit(1);
}

/* A context of its own, with its weights and P threads. */
static attnrt_ctx *new_ctx(int threads, char *err, size_t errlen) {
  attnrt_ctx *ctx = attnrt_ctx_new(model);
  if (!ctx) {
    snprintf(err, errlen, "attnrt_ctx_new: out of memory");
    return NULL;
  }
  attnrt_status s = attnrt_ctx_set_threads(ctx, threads);
  if (s == ATTNRT_OK && weights_path) s = attnrt_ctx_load_weights(ctx, weights_path);
  if (s != ATTNRT_OK) {
    snprintf(err, errlen, "%s", attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Runs the model once into buf (all outputs, one after another). */
static attnrt_status run_into(attnrt_ctx *ctx, float *buf) {
  void *outs[64];
  float *p = buf;
  for (int64_t i = 0; i < model->n_outputs; i++) {
    outs[i] = p;
    p += out_numel[i];
  }
  memset(buf, 0xff, (size_t)total * sizeof *buf);   /* NaNs: unwritten shows */
  return attnrt_run(ctx, in_ptr, outs, dims);
}

typedef struct Job { int id, threads; int mismatches; char err[512]; } Job;

static pthread_barrier_t start;

static void *worker(void *arg) {
  Job *job = arg;
  pthread_barrier_wait(&start);
  attnrt_ctx *ctx = new_ctx(job->threads, job->err, sizeof job->err);
  if (!ctx) return NULL;
  float *buf = malloc((size_t)total * sizeof *buf);
  if (!buf) die("malloc", "out of memory");
  for (int r = 0; r < RUNS; r++) {
    if (run_into(ctx, buf) != ATTNRT_OK) {
      snprintf(job->err, sizeof job->err, "run %d: %s", r, attnrt_ctx_error(ctx));
      break;
    }
    if (memcmp(buf, ref[job->threads], (size_t)total * sizeof *buf)) job->mismatches++;
  }
  free(buf);
  attnrt_ctx_free(ctx);
  return NULL;
}

static void read_inputs(const char *dir) {
  in = calloc((size_t)model->n_inputs + 1, sizeof *in);
  in_ptr = calloc((size_t)model->n_inputs + 1, sizeof *in_ptr);
  if (!in || !in_ptr) die("calloc", "out of memory");
  char path[4096], err[1024];
  for (int64_t i = 0; i < model->n_inputs; i++) {
    snprintf(path, sizeof path, "%s/in.%s.npy", dir, model->inputs[i].name);
    if (attnrt_npy_read(path, &in[i], err, sizeof err) != ATTNRT_OK) die(path, err);
    in_ptr[i] = in[i].data;
  }
  attnrt_ctx *ctx = attnrt_ctx_new(model);
  if (!ctx || model->n_dims > 16) die(model->name, "cannot make a context");
  if (attnrt_bind_dims(ctx, in, dims) != ATTNRT_OK) die("attnrt_bind_dims", attnrt_ctx_error(ctx));
  attnrt_ctx_free(ctx);
  out_shape = calloc((size_t)model->n_outputs, sizeof *out_shape);
  out_numel = calloc((size_t)model->n_outputs, sizeof *out_numel);
  if (!out_shape || !out_numel || model->n_outputs > 64) die("outputs", "too many");
  for (int64_t i = 0; i < model->n_outputs; i++) {
    if (attnrt_output_shape(model, (int)i, dims, &out_shape[i]) != ATTNRT_OK) die("attnrt_output_shape", "failed");
    out_numel[i] = attnrt_tensor_numel(&out_shape[i]);
    total += out_numel[i];
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  static char wpath[4096];
  if (model->n_params > 0 && !model->embedded) {
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", argv[1]);
    weights_path = wpath;
  }
  read_inputs(argv[1]);

  char err[512];
  for (int p = 1; p <= 2; p++) {
    attnrt_ctx *ctx = new_ctx(p, err, sizeof err);
    if (!ctx) die("reference context", err);
    ref[p] = malloc((size_t)total * sizeof(float));
    if (!ref[p]) die("malloc", "out of memory");
    if (run_into(ctx, ref[p]) != ATTNRT_OK) die("reference run", attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    for (int64_t k = 0; k < total; k++)
      if (((uint32_t *)ref[p])[k] == 0xffffffffu) die("reference run", "an output element was never written");
  }

  int bad = 0;
  for (int round = 0; round < ROUNDS; round++) {
    Job jobs[APP_THREADS];
    pthread_t tid[APP_THREADS];
    pthread_barrier_init(&start, NULL, APP_THREADS);
    for (int t = 0; t < APP_THREADS; t++) {
      jobs[t] = (Job){.id = t, .threads = 1 + (round + t) % 2};
      if (pthread_create(&tid[t], NULL, worker, &jobs[t])) die("pthread_create", "failed");
    }
    for (int t = 0; t < APP_THREADS; t++) pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < APP_THREADS; t++) {
      if (jobs[t].err[0]) {
        fprintf(stderr, "concurrent_run: round %d, thread %d: %s\n", round, t, jobs[t].err);
        bad = 1;
      }
      if (jobs[t].mismatches) {
        fprintf(stderr, "concurrent_run: round %d, thread %d (%d pool threads): %d of %d runs differ from the run alone\n",
                round, t, jobs[t].threads, jobs[t].mismatches, RUNS);
        bad = 1;
      }
    }
  }
  for (int64_t i = 0; i < model->n_inputs; i++) attnrt_tensor_free(&in[i]);
  free(in);
  free(in_ptr);
  free(out_shape);
  free(out_numel);
  free(ref[1]);
  free(ref[2]);
  printf("concurrent_run: %s: %d rounds of %d threads x %d runs on contexts of 1 and 2 threads: %s\n",
         model->name, ROUNDS, APP_THREADS, RUNS, bad ? "FAILED" : "every output identical to the run alone");
  return bad;
}
