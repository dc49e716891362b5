/* run_model.c: run one compiled model on the inputs of a run-test folder.
 *
 *   cc -DMODEL_DESC=sdpa_model [-DMODEL_HEADER='"sdpa.h"'] -I runtime/include \
 *      run_model.c sdpa.o libattnrt.a -lm -lpthread -o run_model
 *   run_model DIR OUTDIR
 *
 * For every input of the model's descriptor it reads DIR/in.<name>.npy, binds
 * the params from DIR/weights.safetensors (if the model has params and none
 * are embedded), binds the symbolic dims from the input shapes, allocates
 * each output from attnrt_output_shape, runs the model once and writes
 * OUTDIR/out.<name>.npy.  Any failure prints a message (the context's error
 * where there is one) and exits 1.
 *
 * Beyond that it checks what a caller can see of the generated code: every
 * output element is written (outputs start as NaN), nothing is written past
 * the end of an output (guard words), and the inputs are not modified.
 *
 * The model runs on 1 thread, then on RUN_THREADS (default 3, so that work
 * splits unevenly whatever the machine) through attnrt_run, again through
 * attnrt_run, and through the typed entry point (with -DTYPED_CALL).  The last
 * three must give identical bits.  The
 * serial results go to OUTDIR/out1.<name>.npy, the threaded ones to
 * OUTDIR/out.<name>.npy: both are compared with the expected values.
 *
 * With -DTYPED_CALL, the program is also linked with a generated function
 *   int typed_call(attnrt_ctx *, void *const *in, void *const *out, const int64_t *dims)
 * that calls the header's typed entry point NAME(ctx, inputs..., outputs...,
 * dims...); -DTYPED_NI/-DTYPED_NO/-DTYPED_ND give the counts it was made for.
 * Its results must be bit-identical to attnrt_run's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnrt.h"

#ifdef MODEL_HEADER
#include MODEL_HEADER
#endif

#ifndef MODEL_DESC
#error "compile with -DMODEL_DESC=<model>_model"
#endif

extern const attnrt_model_desc MODEL_DESC;

#ifndef RUN_THREADS
#define RUN_THREADS 3
#endif

#ifdef TYPED_CALL
int typed_call(attnrt_ctx *ctx, void *const *in, void *const *out, const int64_t *dims);
#endif

#define GUARD 16                          /* floats after each output */
#define GUARD_BITS 0x7fc0dead7fc0deadull  /* two quiet NaNs with a payload */

static void die(const char *what, const char *msg) {
  fprintf(stderr, "run_model: %s: %s\n", what, msg && *msg ? msg : "(no message)");
  exit(1);
}

static void die_ctx(const char *what, attnrt_status s, attnrt_ctx *ctx) {
  fprintf(stderr, "run_model: %s failed: %s: %s\n", what, attnrt_status_str(s),
          ctx ? attnrt_ctx_error(ctx) : "");
  exit(1);
}

static char *path_join(const char *dir, const char *prefix, const char *name,
                       const char *suffix) {
  size_t n = strlen(dir) + strlen(prefix) + strlen(name) + strlen(suffix) + 2;
  char *p = malloc(n);
  if (!p) die("malloc", "out of memory");
  snprintf(p, n, "%s/%s%s%s", dir, prefix, name, suffix);
  return p;
}

static size_t elem_size(attnrt_dtype d) { (void)d; return 4; } /* f32 and i32 */

static uint32_t fill_word(int64_t j) { return (uint32_t)(GUARD_BITS >> (j & 1 ? 32 : 0)); }

/* Fill an output and its guard words with the pattern. */
static void fill(uint32_t *buf, int64_t n) {
  for (int64_t j = 0; j < n + GUARD; j++) buf[j] = fill_word(j);
}

/* After a run: no guard word touched, every element written, the inputs as
 * they were.  Returns 1 if something is wrong. */
static int check_run(const char *how, const attnrt_model_desc *m, const attnrt_tensor *out,
                     const int64_t *nel, const attnrt_tensor *in, const attnrt_tensor *in_copy) {
  int bad = 0;
  for (int i = 0; i < (int)m->n_outputs; i++) {
    const uint32_t *buf = out[i].data;
    for (int64_t j = 0; j < GUARD; j++)
      if (buf[nel[i] + j] != fill_word(nel[i] + j)) {
        fprintf(stderr, "run_model: %s: output %s: written past its end (%lld elements, guard word %lld)\n",
                how, m->outputs[i].name, (long long)nel[i], (long long)j);
        bad = 1;
        break;
      }
    int64_t unwritten = 0;
    for (int64_t j = 0; j < nel[i]; j++)
      if (buf[j] == fill_word(j)) unwritten++;
    if (unwritten)
      fprintf(stderr, "run_model: %s: output %s: %lld of %lld elements still hold the fill pattern "
              "(never written?)\n", how, m->outputs[i].name, (long long)unwritten, (long long)nel[i]);
  }
  for (int i = 0; i < (int)m->n_inputs; i++) {
    size_t bytes = (size_t)attnrt_tensor_numel(&in[i]) * elem_size(in[i].dtype);
    if (memcmp(in[i].data, in_copy[i].data, bytes)) {
      fprintf(stderr, "run_model: %s: input %s was modified by the model\n", how, m->inputs[i].name);
      bad = 1;
    }
  }
  return bad;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR OUTDIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1], *outdir = argv[2];
  const attnrt_model_desc *m = &MODEL_DESC;
  char err[512];

  if (m->abi_version != ATTNRT_ABI_VERSION) {
    fprintf(stderr, "run_model: %s: abi_version %lld, runtime has %d\n",
            m->name ? m->name : "?", (long long)m->abi_version, ATTNRT_ABI_VERSION);
    return 1;
  }
  if (m->n_inputs < 0 || m->n_outputs < 1 || m->n_params < 0 || m->n_dims < 0 ||
      (m->n_inputs && !m->inputs) || !m->outputs || (m->n_params && !m->params) ||
      (m->n_dims && !m->dim_names) || !m->body || !m->scratch_size)
    die(m->name ? m->name : "descriptor", "malformed model descriptor");

  int ni = (int)m->n_inputs, no = (int)m->n_outputs;
  attnrt_tensor *in = calloc((size_t)ni + 1, sizeof *in);
  attnrt_tensor *in_copy = calloc((size_t)ni + 1, sizeof *in_copy);
  void **in_ptr = calloc((size_t)ni + 1, sizeof *in_ptr);
  attnrt_tensor *out = calloc((size_t)no, sizeof *out);
  void **out_ptr = calloc((size_t)no, sizeof *out_ptr);
  int64_t *nel = calloc((size_t)no, sizeof *nel);
  int64_t *dims = calloc((size_t)m->n_dims + 1, sizeof *dims);
  if (!in || !in_copy || !in_ptr || !out || !out_ptr || !nel || !dims)
    die("calloc", "out of memory");

  /* inputs */
  for (int i = 0; i < ni; i++) {
    char *p = path_join(dir, "in.", m->inputs[i].name, ".npy");
    attnrt_status s = attnrt_npy_read(p, &in[i], err, sizeof err);
    if (s != ATTNRT_OK) die(p, err);
    in_ptr[i] = in[i].data;
    int64_t n = attnrt_tensor_numel(&in[i]);
    size_t bytes = (size_t)n * elem_size(in[i].dtype);
    in_copy[i] = in[i];
    in_copy[i].data = malloc(bytes ? bytes : 1);
    if (!in_copy[i].data) die("malloc", "out of memory");
    memcpy(in_copy[i].data, in[i].data, bytes);
    free(p);
  }

  attnrt_ctx *ctx = attnrt_ctx_new(m);
  if (!ctx) die("attnrt_ctx_new", "out of memory");
  if (attnrt_ctx_model(ctx) != m) die("attnrt_ctx_model", "does not return the model");

  /* params */
  if (m->n_params > 0 && !m->embedded) {
    char *p = path_join(dir, "weights", "", ".safetensors");
    attnrt_status s = attnrt_ctx_load_weights(ctx, p);
    if (s != ATTNRT_OK) die_ctx("attnrt_ctx_load_weights", s, ctx);
    const char *w = attnrt_ctx_warnings(ctx);
    if (w && *w) fprintf(stderr, "run_model: weights warnings:\n%s\n", w);
    free(p);
  }

  /* dims */
  attnrt_status s = attnrt_bind_dims(ctx, in, dims);
  if (s != ATTNRT_OK) die_ctx("attnrt_bind_dims", s, ctx);
  for (int d = 0; d < (int)m->n_dims; d++)
    fprintf(stderr, "run_model: %s = %lld\n", m->dim_names[d], (long long)dims[d]);

  /* outputs, each followed by guard words, filled with NaN */
  for (int i = 0; i < no; i++) {
    s = attnrt_output_shape(m, i, dims, &out[i]);
    if (s != ATTNRT_OK) die_ctx("attnrt_output_shape", s, ctx);
    if (out[i].dtype != ATTNRT_F32)
      die(m->outputs[i].name, "output dtype is not f32");
    nel[i] = attnrt_tensor_numel(&out[i]);
    if (nel[i] < 0) die(m->outputs[i].name, "output size overflows");
    uint32_t *buf = malloc(((size_t)nel[i] + GUARD) * sizeof(float));
    if (!buf) die("malloc", "out of memory");
    fill(buf, nel[i]);
    out[i].data = buf;
    out_ptr[i] = buf;
  }

  int bad = 0;
  s = attnrt_ctx_set_threads(ctx, 1);
  if (s != ATTNRT_OK) die_ctx("attnrt_ctx_set_threads", s, ctx);
  s = attnrt_run(ctx, in_ptr, out_ptr, dims);
  if (s != ATTNRT_OK) die_ctx("attnrt_run", s, ctx);
  bad |= check_run("run on 1 thread", m, out, nel, in, in_copy);

  /* the serial results, kept for OUTDIR/out1.<name>.npy */
  float **serial = calloc((size_t)no, sizeof *serial);
  float **par = calloc((size_t)no, sizeof *par);
  if (!serial || !par) die("calloc", "out of memory");
  for (int i = 0; i < no; i++) {
    serial[i] = malloc((size_t)nel[i] * sizeof(float) + 1);
    par[i] = malloc((size_t)nel[i] * sizeof(float) + 1);
    if (!serial[i] || !par[i]) die("malloc", "out of memory");
    memcpy(serial[i], out[i].data, (size_t)nel[i] * sizeof(float));
  }

  /* a run on RUN_THREADS threads; its results go to OUTDIR/out.<name>.npy */
  s = attnrt_ctx_set_threads(ctx, RUN_THREADS);
  if (s != ATTNRT_OK) die_ctx("attnrt_ctx_set_threads", s, ctx);
  for (int i = 0; i < no; i++) fill(out[i].data, nel[i]);
  s = attnrt_run(ctx, in_ptr, out_ptr, dims);
  if (s != ATTNRT_OK) die_ctx("attnrt_run (threads)", s, ctx);
  bad |= check_run("run on threads", m, out, nel, in, in_copy);
  for (int i = 0; i < no; i++) {
    memcpy(par[i], out[i].data, (size_t)nel[i] * sizeof(float));
    if (memcmp(serial[i], par[i], (size_t)nel[i] * sizeof(float))) {
      double worst = 0;
      for (int64_t j = 0; j < nel[i]; j++) {
        double d = fabs((double)serial[i][j] - (double)par[i][j]);
        if (d > worst || d != d) worst = d;
      }
      fprintf(stderr, "run_model: note: output %s on 1 thread and on %d differs (max abs diff %g); "
              "both are compared with the expected values\n",
              m->outputs[i].name, attnrt_ctx_threads(ctx), worst);
    }
  }

  /* the same run again, and through the typed entry point: the same bits */
  for (int pass = 0; pass < 2; pass++) {
    const char *how = pass == 0 ? "a second attnrt_run" : "the typed entry point";
#ifndef TYPED_CALL
    if (pass == 1) break;
#endif
    for (int i = 0; i < no; i++) fill(out[i].data, nel[i]);
    if (pass == 0) {
      s = attnrt_run(ctx, in_ptr, out_ptr, dims);
    } else {
#ifdef TYPED_CALL
      /* the typed entry point takes the base dims; the sums are computed */
      int64_t base[ATTNRT_MAX_DIMS + 1];
      int nb = 0;
      for (int64_t d = 0; d < m->n_dims; d++)
        if (!m->dim_sums || m->dim_sums[d].n_terms == 0) base[nb++] = dims[d];
      if (m->n_inputs != TYPED_NI || m->n_outputs != TYPED_NO || nb != TYPED_ND) {
        fprintf(stderr, "run_model: the descriptor has %lld inputs, %lld outputs, %d base dims; "
                "the typed entry point was called with %d, %d, %d\n", (long long)m->n_inputs,
                (long long)m->n_outputs, nb, TYPED_NI, TYPED_NO, TYPED_ND);
        return 1;
      }
      s = (attnrt_status)typed_call(ctx, in_ptr, out_ptr, base);
#endif
    }
    if (s != ATTNRT_OK) die_ctx(how, s, ctx);
    bad |= check_run(how, m, out, nel, in, in_copy);
    for (int i = 0; i < no; i++)
      if (memcmp(par[i], out[i].data, (size_t)nel[i] * sizeof(float))) {
        fprintf(stderr, "run_model: output %s: %s gives other bits than the first run on %d threads\n",
                m->outputs[i].name, how, attnrt_ctx_threads(ctx));
        bad = 1;
      }
  }

  for (int i = 0; i < no; i++)
    for (int k = 0; k < 2; k++) {
      char *p = path_join(outdir, k ? "out1." : "out.", m->outputs[i].name, ".npy");
      attnrt_tensor t = out[i];
      t.data = k ? serial[i] : par[i];
      s = attnrt_npy_write(p, &t, err, sizeof err);
      if (s != ATTNRT_OK) die(p, err);
      free(p);
    }

  for (int i = 0; i < ni; i++) {
    attnrt_tensor_free(&in[i]);
    free(in_copy[i].data);
  }
  for (int i = 0; i < no; i++) {
    free(out[i].data);
    free(serial[i]);
    free(par[i]);
  }
  attnrt_ctx_free(ctx);
  free(serial);
  free(par);
  free(in);
  free(in_copy);
  free(in_ptr);
  free(out);
  free(out_ptr);
  free(nel);
  free(dims);
  return bad;
}
