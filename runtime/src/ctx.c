/* ctx.c: contexts, model descriptor validation, threads, scratch memory and
 * the error entry points of the generated code. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Descriptor counts beyond this are a corrupt descriptor, not a model. */
#define MODEL_COUNT_MAX (1 << 20)

attnrt_status attnrt_ctx_fail(attnrt_ctx *ctx, attnrt_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  attnrt_verrf(ctx->err, sizeof ctx->err, fmt, ap);
  va_end(ap);
  return status;
}

static bool check_count(const char *what, int64_t n, const void *array,
                        const char *model, char *err, size_t errlen) {
  if (n < 0 || n > MODEL_COUNT_MAX) {
    attnrt_errf(err, errlen, "model '%s': bad descriptor: %s = %lld", model, what,
              (long long)n);
    return false;
  }
  if (n > 0 && array == NULL) {
    attnrt_errf(err, errlen, "model '%s': bad descriptor: %lld %s but no array",
              model, (long long)n, what);
    return false;
  }
  return true;
}

static bool check_tensor_descs(const attnrt_model_desc *m, const char *kind,
                               const attnrt_tensor_desc *t, int64_t n,
                               char *err, size_t errlen) {
  for (int64_t i = 0; i < n; i++) {
    const char *name = t[i].name;
    if (name == NULL) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: %s %lld has no name",
                m->name, kind, (long long)i);
      return false;
    }
    /* bf16: a param stored in bf16 (attnc --weights-dtype bf16) */
    bool bf16_ok = t == m->params && t[i].dtype == ATTNRT_BF16;
    if (t[i].dtype != ATTNRT_F32 && t[i].dtype != ATTNRT_I32 && !bf16_ok) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: %s '%s' has dtype %lld",
                m->name, kind, name, (long long)t[i].dtype);
      return false;
    }
    if (t[i].rank < 0 || t[i].rank > ATTNRT_MAX_RANK) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: %s '%s' has rank %lld",
                m->name, kind, name, (long long)t[i].rank);
      return false;
    }
    for (int64_t a = 0; a < t[i].rank; a++) {
      int64_t d = t[i].dims[a];
      if (d < -m->n_dims) {
        attnrt_errf(err, errlen,
                  "model '%s': bad descriptor: %s '%s' dim %lld refers to "
                  "symbolic dim %lld of %lld", m->name, kind, name, (long long)a,
                  (long long)(-(d + 1)), (long long)m->n_dims);
        return false;
      }
    }
  }
  return true;
}

bool attnrt_check_model(const attnrt_model_desc *m, char *err, size_t errlen) {
  if (m == NULL) {
    attnrt_errf(err, errlen, "model descriptor is NULL");
    return false;
  }
  if (m->abi_version != ATTNRT_ABI_VERSION) {
    attnrt_errf(err, errlen,
              "model descriptor has ABI version %lld but this runtime has %d "
              "(recompile the model with a matching attnc)",
              (long long)m->abi_version, ATTNRT_ABI_VERSION);
    return false;
  }
  if (m->name == NULL) {
    attnrt_errf(err, errlen, "model descriptor has no name");
    return false;
  }
  if (!check_count("params", m->n_params, m->params, m->name, err, errlen) ||
      !check_count("inputs", m->n_inputs, m->inputs, m->name, err, errlen) ||
      !check_count("outputs", m->n_outputs, m->outputs, m->name, err, errlen) ||
      !check_count("dims", m->n_dims, m->dim_names, m->name, err, errlen))
    return false;
  for (int64_t o = 0; m->stacks != NULL && o < m->n_outputs; o++) {
    int64_t k = m->stacks[o];
    if (k < -1 || k >= m->n_inputs ||
        (k >= 0 && (m->inputs[k].rank < 2 || m->inputs[k].rank != m->outputs[o].rank || m->inputs[k].dims[0] < 1 ||
                    m->inputs[k].dims[0] != m->outputs[o].dims[0]))) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: output %lld stacks input %lld", m->name, (long long)o,
                  (long long)k);
      return false;
    }
  }
  for (int64_t o = 0; m->appends != NULL && o < m->n_outputs; o++)
    if (m->appends[o] < -1 || m->appends[o] >= m->n_inputs) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: output %lld appends to input %lld", m->name,
                (long long)o, (long long)m->appends[o]);
      return false;
    }
  if (m->n_dims > ATTNRT_MAX_DIMS) {
    attnrt_errf(err, errlen, "model '%s': bad descriptor: %lld dims (at most %d)", m->name,
              (long long)m->n_dims, ATTNRT_MAX_DIMS);
    return false;
  }
  for (int64_t d = 0; m->dim_sums != NULL && d < m->n_dims; d++) {
    const attnrt_dim_sum *f = &m->dim_sums[d];
    bool ok = f->n_terms >= 0 && f->n_terms <= ATTNRT_MAX_SUM_TERMS;
    for (int64_t i = 0; ok && i < f->n_terms; i++)
      ok = f->sym[i] >= 0 && f->sym[i] < m->n_dims && m->dim_sums[f->sym[i]].n_terms == 0 &&
           f->coef[i] >= -(1 << 20) && f->coef[i] <= (1 << 20);
    ok = ok && f->k >= -(INT64_C(1) << 60) && f->k <= (INT64_C(1) << 60);
    if (!ok) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: dim %lld is a bad sum", m->name, (long long)d);
      return false;
    }
  }
  for (int64_t d = 0; d < m->n_dims; d++) {
    if (m->dim_names[d] == NULL) {
      attnrt_errf(err, errlen, "model '%s': bad descriptor: dim %lld has no name",
                m->name, (long long)d);
      return false;
    }
  }
  if (!check_tensor_descs(m, "param", m->params, m->n_params, err, errlen) ||
      !check_tensor_descs(m, "input", m->inputs, m->n_inputs, err, errlen) ||
      !check_tensor_descs(m, "output", m->outputs, m->n_outputs, err, errlen))
    return false;
  if (m->body == NULL) {
    attnrt_errf(err, errlen, "model '%s': bad descriptor: no body", m->name);
    return false;
  }
  return true;
}

attnrt_ctx *attnrt_ctx_new(const attnrt_model_desc *model) {
  attnrt_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return NULL;
  ctx->model = model;
  ctx->threads = 1;
  /* A bad descriptor still gets a context, so that the caller can read why
   * through attnrt_ctx_error; every later call fails with that message. */
  ctx->model_ok = attnrt_check_model(model, ctx->err, sizeof ctx->err);
  if (!ctx->model_ok)
    return ctx;
  size_t n = model->n_params > 0 ? (size_t)model->n_params : 1;
  ctx->params = calloc(n, sizeof *ctx->params);
  ctx->rounded = calloc(n, sizeof *ctx->rounded);
  if (ctx->params == NULL || ctx->rounded == NULL) {
    free(ctx->params);
    free(ctx->rounded);
    free(ctx);
    return NULL;
  }
  ctx->capacity = calloc(model->n_inputs > 0 ? (size_t)model->n_inputs : 1, sizeof *ctx->capacity);
  if (ctx->capacity == NULL) {
    free(ctx->params);
    free(ctx);
    return NULL;
  }
  if (model->embedded != NULL)
    for (int64_t i = 0; i < model->n_params; i++)
      ctx->params[i] = (void *)model->embedded[i];
  if (model->default_threads == -1)
    attnrt_ctx_set_threads(ctx, 0);
  else if (model->default_threads > 1 && model->default_threads <= ATTNRT_THREADS_MAX)
    attnrt_ctx_set_threads(ctx, (int)model->default_threads);
  return ctx;
}

void attnrt_ctx_free(attnrt_ctx *ctx) {
  if (ctx == NULL)
    return;
  attnrt_pool_free(ctx->pool);
  attnrt_st_close(ctx->weights);
  free(ctx->converted);
  if (ctx->rounded != NULL)
    for (int64_t i = 0; i < ctx->model->n_params; i++)
      free(ctx->rounded[i]);
  free(ctx->rounded);
  free(ctx->params);
  free(ctx->capacity);
  free(ctx->scratch);
  free(ctx->prepared);
  free(ctx->warnings);
  free(ctx);
}

const attnrt_model_desc *attnrt_ctx_model(const attnrt_ctx *ctx) {
  return ctx != NULL ? ctx->model : NULL;
}

const void *attnrt_ctx_param_data(const attnrt_ctx *ctx, int i) {
  if (ctx == NULL || !ctx->model_ok || i < 0 || i >= ctx->model->n_params)
    return NULL;
  return ctx->params[i];
}

const char *attnrt_ctx_error(const attnrt_ctx *ctx) {
  return ctx != NULL ? ctx->err : "context is NULL";
}

const char *attnrt_ctx_warnings(const attnrt_ctx *ctx) {
  return ctx != NULL && ctx->warnings != NULL ? ctx->warnings : "";
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    return 1;
  return n > ATTNRT_THREADS_MAX ? ATTNRT_THREADS_MAX : (int)n;
}

attnrt_status attnrt_ctx_set_threads(attnrt_ctx *ctx, int n) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  if (n < 0 || n > ATTNRT_THREADS_MAX)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "thread count %d is out of range [0, %d]",
                         n, ATTNRT_THREADS_MAX);
  if (n == 0)
    n = online_cpus();
  /* Workers are made lazily for the new count by the next parallel_for. */
  if (ctx->pool != NULL && attnrt_pool_workers(ctx->pool) != n - 1) {
    attnrt_pool_free(ctx->pool);
    ctx->pool = NULL;
  }
  ctx->threads = n;
  return ATTNRT_OK;
}

int attnrt_ctx_threads(const attnrt_ctx *ctx) {
  return ctx != NULL ? ctx->threads : 0;
}

attnrt_status attnrt_ctx_set_scratch(attnrt_ctx *ctx, void *buf, size_t size) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  if (buf != NULL && (uintptr_t)buf % 64 != 0)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "scratch buffer %p is not 64-byte aligned",
                         buf);
  /* NULL hands scratch management back to the runtime. */
  ctx->user_scratch = buf;
  ctx->user_scratch_size = buf != NULL ? size : 0;
  return ATTNRT_OK;
}

attnrt_status attnrt_ctx_set_capacity(attnrt_ctx *ctx, const char *input, int64_t capacity) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  if (!ctx->model_ok)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "the model's descriptor is bad");
  const attnrt_model_desc *m = ctx->model;
  int64_t k = -1;
  for (int64_t i = 0; input != NULL && i < m->n_inputs; i++)
    if (strcmp(m->inputs[i].name, input) == 0)
      k = i;
  if (k < 0)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "model '%s' has no input '%s'", m->name, input ? input : "(null)");
  bool stacked = false;
  for (int64_t o = 0; m->stacks != NULL && o < m->n_outputs; o++)
    stacked |= m->stacks[o] == k;
  if (!stacked)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG,
                         "input '%s' of model '%s' is not a stacked cache (no output extends its layers): "
                         "a capacity applies to a layer array's cache [N, P, ...]", input, m->name);
  if (capacity < 0 || capacity > ATTNRT_DIM_MAX)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "capacity %lld of input '%s' is out of range [0, %lld]",
                         (long long)capacity, input, (long long)ATTNRT_DIM_MAX);
  ctx->capacity[k] = capacity;
  return ATTNRT_OK;
}

/* ---- called by generated code ------------------------------------------ */

int64_t attnrt_capacity(const struct attnrt_ctx *ctx, int64_t i) {
  return ctx->capacity[i];
}

int32_t attnrt_fail(struct attnrt_ctx *ctx, int32_t status, const char *msg) {
  if (ctx != NULL)
    attnrt_errf(ctx->err, sizeof ctx->err, "%s",
              msg != NULL ? msg : attnrt_status_str((attnrt_status)status));
  return status;
}

/* Length of an integer conversion at fmt ("%d", "%ld", "%lld", "%i"...), or
 * 0 if fmt does not start with one. */
static size_t int_conversion_len(const char *fmt) {
  size_t i = 1;
  while (i < 3 && fmt[i] == 'l')
    i++;
  return fmt[i] == 'd' || fmt[i] == 'i' ? i + 1 : 0;
}

/* The generated code's format has one integer conversion.  It is expanded
 * here rather than passed to snprintf so that a wrong format can never read a
 * missing argument: any other conversion is copied as it is. */
int32_t attnrt_fail_i(struct attnrt_ctx *ctx, int32_t status, const char *fmt, int64_t v) {
  if (ctx == NULL)
    return status;
  if (fmt == NULL)
    return attnrt_fail(ctx, status, NULL);
  char *out = ctx->err;
  size_t cap = sizeof ctx->err, pos = 0;
  bool used = false;
  for (const char *p = fmt; *p != '\0' && pos + 1 < cap;) {
    size_t conv = p[0] == '%' ? int_conversion_len(p) : 0;
    if (p[0] == '%' && p[1] == '%') {
      out[pos++] = '%';
      p += 2;
    } else if (conv > 0 && !used) {
      int n = snprintf(out + pos, cap - pos, "%lld", (long long)v);
      pos += n > 0 ? (size_t)n : 0;
      if (pos >= cap)
        pos = cap - 1;
      used = true;
      p += conv;
    } else {
      out[pos++] = *p++;
    }
  }
  out[pos] = '\0';
  return status;
}

/* attnrt_fail_i with the element's position: the first "%@" in fmt becomes
 * "[i, j, ...]", the row-major index of element flat of a tensor of shape
 * dims[0..rank) ("" for rank 0), so "ids%@ = %lld" reads "ids[1, 3] = 50". */
int32_t attnrt_fail_at(struct attnrt_ctx *ctx, int32_t status, const char *fmt, int64_t v, int64_t flat,
                       int32_t rank, const int64_t *dims) {
  if (ctx == NULL)
    return status;
  if (fmt == NULL)
    return attnrt_fail(ctx, status, NULL);
  char pos[8 * 24] = "";
  if (rank > 0 && rank <= 8 && dims != NULL && flat >= 0) {
    int64_t idx[8];
    for (int32_t d = rank - 1; d >= 0; d--) {
      int64_t n = dims[d] > 0 ? dims[d] : 1;
      idx[d] = flat % n;
      flat /= n;
    }
    size_t k = 0;
    for (int32_t d = 0; d < rank && k < sizeof pos; d++) {
      int n = snprintf(pos + k, sizeof pos - k, "%s%lld", d ? ", " : "[", (long long)idx[d]);
      k += n > 0 ? (size_t)n : 0;
    }
    if (k < sizeof pos - 1) {
      pos[k] = ']';
      pos[k + 1] = '\0';
    }
  }
  /* the format with the position spliced in (a position holds no '%') */
  char full[sizeof ctx->err];
  const char *at = strstr(fmt, "%@");
  if (at == NULL)
    return attnrt_fail_i(ctx, status, fmt, v);
  snprintf(full, sizeof full, "%.*s%s%s", (int)(at - fmt), fmt, pos, at + 2);
  return attnrt_fail_i(ctx, status, full, v);
}
