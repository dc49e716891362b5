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

attn_status attn_ctx_fail(attn_ctx *ctx, attn_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  attn_verrf(ctx->err, sizeof ctx->err, fmt, ap);
  va_end(ap);
  return status;
}

static bool check_count(const char *what, int64_t n, const void *array,
                        const char *model, char *err, size_t errlen) {
  if (n < 0 || n > MODEL_COUNT_MAX) {
    attn_errf(err, errlen, "model '%s': bad descriptor: %s = %lld", model, what,
              (long long)n);
    return false;
  }
  if (n > 0 && array == NULL) {
    attn_errf(err, errlen, "model '%s': bad descriptor: %lld %s but no array",
              model, (long long)n, what);
    return false;
  }
  return true;
}

static bool check_tensor_descs(const attn_model_desc *m, const char *kind,
                               const attn_tensor_desc *t, int64_t n,
                               char *err, size_t errlen) {
  for (int64_t i = 0; i < n; i++) {
    const char *name = t[i].name;
    if (name == NULL) {
      attn_errf(err, errlen, "model '%s': bad descriptor: %s %lld has no name",
                m->name, kind, (long long)i);
      return false;
    }
    if (t[i].dtype != ATTN_F32 && t[i].dtype != ATTN_I32) {
      attn_errf(err, errlen, "model '%s': bad descriptor: %s '%s' has dtype %lld",
                m->name, kind, name, (long long)t[i].dtype);
      return false;
    }
    if (t[i].rank < 0 || t[i].rank > ATTN_MAX_RANK) {
      attn_errf(err, errlen, "model '%s': bad descriptor: %s '%s' has rank %lld",
                m->name, kind, name, (long long)t[i].rank);
      return false;
    }
    for (int64_t a = 0; a < t[i].rank; a++) {
      int64_t d = t[i].dims[a];
      if (d < -m->n_dims) {
        attn_errf(err, errlen,
                  "model '%s': bad descriptor: %s '%s' dim %lld refers to "
                  "symbolic dim %lld of %lld", m->name, kind, name, (long long)a,
                  (long long)(-(d + 1)), (long long)m->n_dims);
        return false;
      }
    }
  }
  return true;
}

bool attn_check_model(const attn_model_desc *m, char *err, size_t errlen) {
  if (m == NULL) {
    attn_errf(err, errlen, "model descriptor is NULL");
    return false;
  }
  if (m->abi_version != ATTN_ABI_VERSION) {
    attn_errf(err, errlen,
              "model descriptor has ABI version %lld but this runtime has %d "
              "(recompile the model with a matching attnc)",
              (long long)m->abi_version, ATTN_ABI_VERSION);
    return false;
  }
  if (m->name == NULL) {
    attn_errf(err, errlen, "model descriptor has no name");
    return false;
  }
  if (!check_count("params", m->n_params, m->params, m->name, err, errlen) ||
      !check_count("inputs", m->n_inputs, m->inputs, m->name, err, errlen) ||
      !check_count("outputs", m->n_outputs, m->outputs, m->name, err, errlen) ||
      !check_count("dims", m->n_dims, m->dim_names, m->name, err, errlen))
    return false;
  for (int64_t d = 0; d < m->n_dims; d++) {
    if (m->dim_names[d] == NULL) {
      attn_errf(err, errlen, "model '%s': bad descriptor: dim %lld has no name",
                m->name, (long long)d);
      return false;
    }
  }
  if (!check_tensor_descs(m, "param", m->params, m->n_params, err, errlen) ||
      !check_tensor_descs(m, "input", m->inputs, m->n_inputs, err, errlen) ||
      !check_tensor_descs(m, "output", m->outputs, m->n_outputs, err, errlen))
    return false;
  if (m->body == NULL) {
    attn_errf(err, errlen, "model '%s': bad descriptor: no body", m->name);
    return false;
  }
  return true;
}

attn_ctx *attn_ctx_new(const attn_model_desc *model) {
  attn_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return NULL;
  ctx->model = model;
  ctx->threads = 1;
  /* A bad descriptor still gets a context, so that the caller can read why
   * through attn_ctx_error; every later call fails with that message. */
  ctx->model_ok = attn_check_model(model, ctx->err, sizeof ctx->err);
  if (!ctx->model_ok)
    return ctx;
  size_t n = model->n_params > 0 ? (size_t)model->n_params : 1;
  ctx->params = calloc(n, sizeof *ctx->params);
  if (ctx->params == NULL) {
    free(ctx);
    return NULL;
  }
  if (model->embedded != NULL)
    for (int64_t i = 0; i < model->n_params; i++)
      ctx->params[i] = (void *)model->embedded[i];
  if (model->default_threads == -1)
    attn_ctx_set_threads(ctx, 0);
  else if (model->default_threads > 1 && model->default_threads <= ATTN_THREADS_MAX)
    attn_ctx_set_threads(ctx, (int)model->default_threads);
  return ctx;
}

void attn_ctx_free(attn_ctx *ctx) {
  if (ctx == NULL)
    return;
  attn_pool_free(ctx->pool);
  attn_st_close(ctx->weights);
  free(ctx->params);
  free(ctx->scratch);
  free(ctx->warnings);
  free(ctx);
}

const attn_model_desc *attn_ctx_model(const attn_ctx *ctx) {
  return ctx != NULL ? ctx->model : NULL;
}

const void *attn_ctx_param_data(const attn_ctx *ctx, int i) {
  if (ctx == NULL || !ctx->model_ok || i < 0 || i >= ctx->model->n_params)
    return NULL;
  return ctx->params[i];
}

const char *attn_ctx_error(const attn_ctx *ctx) {
  return ctx != NULL ? ctx->err : "context is NULL";
}

const char *attn_ctx_warnings(const attn_ctx *ctx) {
  return ctx != NULL && ctx->warnings != NULL ? ctx->warnings : "";
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    return 1;
  return n > ATTN_THREADS_MAX ? ATTN_THREADS_MAX : (int)n;
}

attn_status attn_ctx_set_threads(attn_ctx *ctx, int n) {
  if (ctx == NULL)
    return ATTN_E_ARG;
  ctx->err[0] = '\0';
  if (n < 0 || n > ATTN_THREADS_MAX)
    return attn_ctx_fail(ctx, ATTN_E_ARG, "thread count %d is out of range [0, %d]",
                         n, ATTN_THREADS_MAX);
  if (n == 0)
    n = online_cpus();
  /* Workers are made lazily for the new count by the next parallel_for. */
  if (ctx->pool != NULL && attn_pool_workers(ctx->pool) != n - 1) {
    attn_pool_free(ctx->pool);
    ctx->pool = NULL;
  }
  ctx->threads = n;
  return ATTN_OK;
}

int attn_ctx_threads(const attn_ctx *ctx) {
  return ctx != NULL ? ctx->threads : 0;
}

attn_status attn_ctx_set_scratch(attn_ctx *ctx, void *buf, size_t size) {
  if (ctx == NULL)
    return ATTN_E_ARG;
  ctx->err[0] = '\0';
  if (buf != NULL && (uintptr_t)buf % 64 != 0)
    return attn_ctx_fail(ctx, ATTN_E_ARG, "scratch buffer %p is not 64-byte aligned",
                         buf);
  /* NULL hands scratch management back to the runtime. */
  ctx->user_scratch = buf;
  ctx->user_scratch_size = buf != NULL ? size : 0;
  return ATTN_OK;
}

/* ---- called by generated code ------------------------------------------ */

int32_t attn_rt_fail(struct attn_ctx *ctx, int32_t status, const char *msg) {
  if (ctx != NULL)
    attn_errf(ctx->err, sizeof ctx->err, "%s",
              msg != NULL ? msg : attn_status_str((attn_status)status));
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
int32_t attn_rt_fail_i(struct attn_ctx *ctx, int32_t status, const char *fmt, int64_t v) {
  if (ctx == NULL)
    return status;
  if (fmt == NULL)
    return attn_rt_fail(ctx, status, NULL);
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
