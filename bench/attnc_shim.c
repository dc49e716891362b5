/* attnc_shim.c: bench's attnc models behind a small C API, so that
 * torch_bench.py can time attnc in its own process, round robin with
 * torch (through ctypes).  run.sh links it with the model objects and
 * libattnrt into attnc_models.so.  A timing of torch against attnc taken
 * seconds apart, in two processes, carries the machine's drift in
 * between (on a shared VM, clock phases of 20-40%); taken side by side it
 * does not.
 *
 *   void *shim_open(name, threads)           a context for model `name`, or NULL
 *   int   shim_count(h, kind)                0 params, 1 inputs, 2 outputs
 *   const char *shim_name(h, kind, i)
 *   int   shim_param(h, name, data, rank, dims)   binds (borrowed data)
 *   int   shim_input(h, i, data, rank, dims)      sets input i
 *   int   shim_output(h, i, data)                 sets output i
 *   int   shim_run(h)                         binds the dims from the
 *                                             inputs' shapes, then runs
 *   const char *shim_error(h)
 * Every int is an attnrt_status (0: ATTNRT_OK). */
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "encoder.h"
#include "gemm.h"
#include "mlp.h"
#include "rnn.h"

static const attnrt_model_desc *const models[] = {
    &sdpa_model,    &sdpa_causal_model, &gemm_model,    &linear_model,  &mlp_model,
    &lstm256_model, &lstm512_model,     &gru256_model,  &gru512_model,  &encoder_model,
};

enum { SHIM_MAX = 8 };
typedef struct Shim {
  attnrt_ctx *ctx;
  const attnrt_model_desc *m;
  attnrt_tensor in[SHIM_MAX];
  void *in_data[SHIM_MAX], *out_data[SHIM_MAX];
  int64_t dims[16];
} Shim;

void *shim_open(const char *name, int threads) {
  for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
    if (strcmp(models[i]->name, name) != 0) continue;
    if (models[i]->n_inputs > SHIM_MAX || models[i]->n_outputs > SHIM_MAX || models[i]->n_dims > 16) return NULL;
    Shim *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->m = models[i];
    s->ctx = attnrt_ctx_new(s->m);
    if (!s->ctx || attnrt_ctx_set_threads(s->ctx, threads) != ATTNRT_OK) {
      attnrt_ctx_free(s->ctx);
      free(s);
      return NULL;
    }
    return s;
  }
  return NULL;
}

int shim_count(void *h, int kind) {
  const Shim *s = h;
  return (int)(kind == 0 ? s->m->n_params : kind == 1 ? s->m->n_inputs : s->m->n_outputs);
}

const char *shim_name(void *h, int kind, int i) {
  const Shim *s = h;
  if (i < 0 || i >= shim_count(h, kind)) return NULL;
  return (kind == 0 ? s->m->params : kind == 1 ? s->m->inputs : s->m->outputs)[i].name;
}

static int fill(attnrt_tensor *t, void *data, int rank, const int64_t *dims) {
  if (rank < 0 || rank > ATTNRT_MAX_RANK) return ATTNRT_E_SHAPE;
  memset(t, 0, sizeof *t);
  t->dtype = ATTNRT_F32;
  t->rank = rank;
  for (int d = 0; d < rank; d++) t->dims[d] = dims[d];
  t->data = data;
  return ATTNRT_OK;
}

int shim_param(void *h, const char *name, void *data, int rank, const int64_t *dims) {
  Shim *s = h;
  attnrt_tensor t;
  int st = fill(&t, data, rank, dims);
  return st != ATTNRT_OK ? st : attnrt_ctx_bind_param(s->ctx, name, &t);
}

int shim_input(void *h, int i, void *data, int rank, const int64_t *dims) {
  Shim *s = h;
  if (i < 0 || i >= s->m->n_inputs) return ATTNRT_E_ARG;
  s->in_data[i] = data;
  return fill(&s->in[i], data, rank, dims);
}

int shim_output(void *h, int i, void *data) {
  Shim *s = h;
  if (i < 0 || i >= s->m->n_outputs) return ATTNRT_E_ARG;
  s->out_data[i] = data;
  return ATTNRT_OK;
}

int shim_run(void *h) {
  Shim *s = h;
  int st = attnrt_bind_dims(s->ctx, s->in, s->dims);
  if (st != ATTNRT_OK) return st;
  return attnrt_run(s->ctx, s->in_data, s->out_data, s->dims);
}

const char *shim_error(void *h) { return attnrt_ctx_error(((Shim *)h)->ctx); }
