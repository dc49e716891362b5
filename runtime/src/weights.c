/* weights.c: binding parameters, one by name or all from a safetensors
 * file, with messages that name the offending tensor. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this many "ignoring tensor" lines, a count says the rest. */
#define WARNINGS_MAX 100

static void clear_warnings(attnrt_ctx *ctx) {
  free(ctx->warnings);
  ctx->warnings = NULL;
  ctx->warn_len = ctx->warn_cap = 0;
}

/* Appends one line; warnings are best effort, so out of memory drops it. */
static void add_warning(attnrt_ctx *ctx, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  attnrt_verrf(line, sizeof line, fmt, ap);
  va_end(ap);
  size_t n = strlen(line) + (ctx->warn_len > 0); /* the separating '\n' */
  if (ctx->warn_len + n + 1 > ctx->warn_cap) {
    size_t cap = ctx->warn_cap ? ctx->warn_cap * 2 : 256;
    while (cap < ctx->warn_len + n + 1)
      cap *= 2;
    char *w = realloc(ctx->warnings, cap);
    if (w == NULL)
      return;
    ctx->warnings = w;
    ctx->warn_cap = cap;
  }
  if (ctx->warn_len > 0)
    ctx->warnings[ctx->warn_len++] = '\n';
  strcpy(ctx->warnings + ctx->warn_len, line);
  ctx->warn_len += strlen(line);
}

static bool has_symbolic_dim(const attnrt_tensor_desc *d) {
  for (int64_t a = 0; a < d->rank; a++)
    if (d->dims[a] < 0)
      return true;
  return false;
}

static bool same_shape(const attnrt_tensor_desc *d, const attnrt_tensor *t) {
  if (t->rank != d->rank)
    return false;
  for (int a = 0; a < t->rank; a++)
    if (t->dims[a] != d->dims[a])
      return false;
  return true;
}

static int64_t find_param(const attnrt_model_desc *m, const char *name) {
  for (int64_t i = 0; i < m->n_params; i++)
    if (strcmp(m->params[i].name, name) == 0)
      return i;
  return -1;
}

/* Name and shape checks shared by both ways of binding; where is " in
 * FILE" or "" and names the source in messages. */
static attnrt_status check_fixed(attnrt_ctx *ctx, const attnrt_tensor_desc *d) {
  char shape[96];
  if (!has_symbolic_dim(d))
    return ATTNRT_OK;
  return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE, "parameter '%s' of model '%s' has a symbolic dim %s",
                       d->name, ctx->model->name,
                       attnrt_fmt_shape(shape, sizeof shape, (int)d->rank, d->dims, ctx->model));
}

static attnrt_status check_param(attnrt_ctx *ctx, const attnrt_tensor_desc *d, const attnrt_tensor *t,
                               const char *where) {
  const attnrt_model_desc *m = ctx->model;
  char want[96], got[96];
  attnrt_status s = check_fixed(ctx, d);
  if (s != ATTNRT_OK)
    return s;
  if (t->dtype != (attnrt_dtype)d->dtype)
    return attnrt_ctx_fail(ctx, ATTNRT_E_DTYPE,
                         "parameter '%s'%s has dtype %s, but model '%s' expects %s",
                         d->name, where, attnrt_dtype_name(t->dtype), m->name,
                         attnrt_dtype_name(d->dtype));
  if (t->rank < 0 || t->rank > ATTNRT_MAX_RANK)
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE, "parameter '%s'%s has rank %d",
                         d->name, where, t->rank);
  if (!same_shape(d, t))
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                         "parameter '%s'%s has shape %s, but model '%s' expects %s",
                         d->name, where, attnrt_fmt_shape(got, sizeof got, t->rank, t->dims, NULL),
                         m->name, attnrt_fmt_shape(want, sizeof want, (int)d->rank, d->dims, m));
  /* Generated code loads elements directly. */
  if ((uintptr_t)t->data % 4 != 0)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "data of parameter '%s'%s is not 4-byte aligned",
                         d->name, where);
  return ATTNRT_OK;
}

attnrt_status attnrt_ctx_bind_param(attnrt_ctx *ctx, const char *name, const attnrt_tensor *t) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  if (!ctx->model_ok) {
    attnrt_check_model(ctx->model, ctx->err, sizeof ctx->err);
    return ATTNRT_E_ARG;
  }
  const attnrt_model_desc *m = ctx->model;
  if (name == NULL || t == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "attnrt_ctx_bind_param: %s is NULL",
                         name == NULL ? "name" : "tensor");
  int64_t i = find_param(m, name);
  if (i < 0)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "model '%s' has no parameter '%s'", m->name, name);
  if (t->data == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "data of parameter '%s' is NULL", name);
  attnrt_status s = check_param(ctx, &m->params[i], t, "");
  if (s != ATTNRT_OK)
    return s;
  ctx->params[i] = t->data;
  return ATTNRT_OK;
}

/* Finds and checks param i in st; on success *data is where it lives. */
static attnrt_status match_param(attnrt_ctx *ctx, const attnrt_safetensors *st, const char *path,
                               int64_t i, void **data) {
  const attnrt_model_desc *m = ctx->model;
  const attnrt_tensor_desc *d = &m->params[i];
  char where[ATTNRT_ERR_LEN / 2];
  snprintf(where, sizeof where, " in %s", path);
  attnrt_status s = check_fixed(ctx, d);
  if (s != ATTNRT_OK)
    return s;
  int j = attnrt_st_find(st, d->name);
  if (j < 0)
    return attnrt_ctx_fail(ctx, ATTNRT_E_MISSING, "missing parameter '%s' in %s", d->name, path);
  attnrt_tensor t;
  attnrt_st_get(st, j, &t);
  /* The file's own spelling of its dtype ("F16") says best what is there. */
  if (t.rank < 0 || t.dtype != (attnrt_dtype)d->dtype)
    return attnrt_ctx_fail(ctx, ATTNRT_E_DTYPE,
                         "parameter '%s' in %s has dtype %s, but model '%s' expects %s",
                         d->name, path, attnrt_st_dtype(st, j), m->name,
                         d->dtype == ATTNRT_I32 ? "I32" : "F32");
  s = check_param(ctx, d, &t, where);
  if (s == ATTNRT_OK)
    *data = t.data;
  return s;
}

static void warn_extras(attnrt_ctx *ctx, const attnrt_safetensors *st, const bool *used) {
  int n = attnrt_st_count(st), shown = 0, hidden = 0;
  for (int j = 0; j < n; j++) {
    if (used[j])
      continue;
    if (shown == WARNINGS_MAX) {
      hidden++;
      continue;
    }
    add_warning(ctx, "ignoring tensor '%s' (not a parameter of model %s)",
                attnrt_st_name(st, j), ctx->model->name);
    shown++;
  }
  if (hidden > 0)
    add_warning(ctx, "ignoring %d more tensors", hidden);
}

/* All params are checked before any is bound: a bad file leaves the
 * context as it was. */
static attnrt_status bind_all(attnrt_ctx *ctx, attnrt_safetensors *st, const char *path) {
  const attnrt_model_desc *m = ctx->model;
  size_t np = m->n_params > 0 ? (size_t)m->n_params : 1;
  int ne = attnrt_st_count(st);
  void **data = calloc(np, sizeof *data);
  bool *used = calloc(ne > 0 ? (size_t)ne : 1, sizeof *used);
  attnrt_status s = ATTNRT_OK;
  if (data == NULL || used == NULL)
    s = attnrt_ctx_fail(ctx, ATTNRT_E_NOMEM, "out of memory loading %s", path);
  for (int64_t i = 0; s == ATTNRT_OK && i < m->n_params; i++) {
    s = match_param(ctx, st, path, i, &data[i]);
    if (s == ATTNRT_OK)
      used[attnrt_st_find(st, m->params[i].name)] = true;
  }
  if (s == ATTNRT_OK) {
    warn_extras(ctx, st, used);
    memcpy(ctx->params, data, (size_t)m->n_params * sizeof *data);
    /* Every param now points into the new mapping, so the old one can go. */
    attnrt_st_close(ctx->weights);
    ctx->weights = st;
  }
  free(data);
  free(used);
  return s;
}

attnrt_status attnrt_ctx_load_weights(attnrt_ctx *ctx, const char *path) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  clear_warnings(ctx);
  if (!ctx->model_ok) {
    attnrt_check_model(ctx->model, ctx->err, sizeof ctx->err);
    return ATTNRT_E_ARG;
  }
  if (path == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "weights path is NULL");
  attnrt_safetensors *st = NULL;
  attnrt_status s = attnrt_st_open(path, &st, ctx->err, sizeof ctx->err);
  if (s != ATTNRT_OK)
    return s;
  s = bind_all(ctx, st, path);
  if (s != ATTNRT_OK)
    attnrt_st_close(st);
  return s;
}
