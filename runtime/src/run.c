/* run.c: attnrt_run and the dims it needs: binding them from input shapes,
 * checking them, output shapes and scratch memory. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static attnrt_status bad_model(attnrt_ctx *ctx) {
  attnrt_check_model(ctx->model, ctx->err, sizeof ctx->err);
  return ATTNRT_E_ARG;
}

static const char *dim_name(const attnrt_model_desc *m, int64_t sym) {
  return m->dim_names[sym];
}

static bool is_sum(const attnrt_model_desc *m, int64_t d) {
  return m->dim_sums != NULL && m->dim_sums[d].n_terms > 0;
}

/* "T = 1, S = 3": the base dims of sum d, for its message. */
static void sum_terms(const attnrt_model_desc *m, int64_t d, const int64_t *dims, char *buf, size_t n) {
  const attnrt_dim_sum *f = &m->dim_sums[d];
  size_t len = 0;
  buf[0] = '\0';
  for (int64_t i = 0; i < f->n_terms && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s = %lld", i ? ", " : "", dim_name(m, f->sym[i]),
                            (long long)dims[f->sym[i]]);
}

attnrt_status attnrt_complete_dims(const attnrt_model_desc *m, int64_t *dims, char *err, size_t errlen) {
  if (m->n_dims > 0 && dims == NULL) {
    attnrt_errf(err, errlen, "dims is NULL but model '%s' has %lld symbolic dims", m->name, (long long)m->n_dims);
    return ATTNRT_E_ARG;
  }
  /* Every dim must be in [0, 2^31) so that generated index arithmetic on
   * products of a few dims stays far from overflow. */
  for (int64_t d = 0; d < m->n_dims; d++)
    if (!is_sum(m, d) && (dims[d] < 0 || dims[d] > ATTNRT_DIM_MAX)) {
      attnrt_errf(err, errlen, "dim %s = %lld is out of range [0, %lld]", dim_name(m, d), (long long)dims[d],
                (long long)ATTNRT_DIM_MAX);
      return ATTNRT_E_ARG;
    }
  /* a sum's terms are base dims below 2^31 and coefficients up to 2^20
   * (attnrt_check_model): no overflow */
  for (int64_t d = 0; d < m->n_dims; d++) {
    if (!is_sum(m, d))
      continue;
    const attnrt_dim_sum *f = &m->dim_sums[d];
    int64_t v = f->k;
    for (int64_t i = 0; i < f->n_terms; i++)
      v += f->coef[i] * dims[f->sym[i]];
    if (v < 0 || v > ATTNRT_DIM_MAX) {
      char terms[160];
      sum_terms(m, d, dims, terms, sizeof terms);
      attnrt_errf(err, errlen, "dim %s = %lld (%s) is out of range [0, %lld]", dim_name(m, d), (long long)v, terms,
                (long long)ATTNRT_DIM_MAX);
      return ATTNRT_E_ARG;
    }
    dims[d] = v;
  }
  return ATTNRT_OK;
}

/* dims (the caller's) completed into all: the sums computed, every dim
 * checked. */
static attnrt_status check_dims(attnrt_ctx *ctx, const int64_t *dims, int64_t *all) {
  const attnrt_model_desc *m = ctx->model;
  if (m->n_dims > 0 && dims == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "dims is NULL but model '%s' has %lld symbolic dims",
                         m->name, (long long)m->n_dims);
  for (int64_t d = 0; d < m->n_dims; d++)
    all[d] = dims[d];
  char err[ATTNRT_ERR_LEN];
  if (attnrt_complete_dims(m, all, err, sizeof err) != ATTNRT_OK)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "%s", err);
  return ATTNRT_OK;
}

/* Resolve a descriptor's dims; dims must be valid for the model. */
static void resolve(const attnrt_tensor_desc *t, const int64_t *dims, int64_t *out) {
  for (int64_t a = 0; a < t->rank; a++)
    out[a] = t->dims[a] >= 0 ? t->dims[a] : dims[-(t->dims[a] + 1)];
}

/* cap > 0: the tensor is a stacked cache laid out [N, cap, ...] */
static bool tensor_bytes_cap(const attnrt_tensor_desc *t, const int64_t *dims, int64_t cap, int64_t *bytes) {
  int64_t shape[ATTNRT_MAX_RANK] = {0};
  resolve(t, dims, shape);
  if (cap > 0)
    shape[1] = cap;
  int64_t n = 4; /* f32 and i32 alike */
  for (int64_t a = 0; a < t->rank; a++)
    if (!attnrt_mul_i64(n, shape[a], &n))
      return false;
  *bytes = n;
  return n < ATTNRT_BYTES_MAX;
}

static bool tensor_bytes(const attnrt_tensor_desc *t, const int64_t *dims, int64_t *bytes) {
  return tensor_bytes_cap(t, dims, 0, bytes);
}

/* The capacity that lays out input k (is_in) or output k, 0 if none. */
static int64_t capacity_of(const attnrt_ctx *ctx, bool is_in, int64_t k) {
  const attnrt_model_desc *m = ctx->model;
  if (is_in)
    return ctx->capacity[k];
  return m->stacks != NULL && m->stacks[k] >= 0 ? ctx->capacity[m->stacks[k]] : 0;
}

/* A capacity holds each layer of the input and of the outputs extending
 * it, and the bytes it lays out are addressable. */
static attnrt_status check_capacities(attnrt_ctx *ctx, const int64_t *dims) {
  const attnrt_model_desc *m = ctx->model;
  for (int64_t k = 0; k < m->n_inputs + m->n_outputs; k++) {
    bool is_in = k < m->n_inputs;
    int64_t i = is_in ? k : k - m->n_inputs, cap = capacity_of(ctx, is_in, i);
    if (cap == 0)
      continue;
    const attnrt_tensor_desc *t = is_in ? &m->inputs[i] : &m->outputs[i];
    int64_t shape[ATTNRT_MAX_RANK] = {0}, bytes;
    resolve(t, dims, shape);
    if (shape[1] > cap) {
      char sym[96];
      return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                           "%s '%s' of shape %s has %lld rows per layer, more than the capacity %lld set for "
                           "input '%s'", is_in ? "input" : "output", t->name,
                           attnrt_fmt_shape(sym, sizeof sym, (int)t->rank, t->dims, m), (long long)shape[1],
                           (long long)cap, m->inputs[is_in ? i : m->stacks[i]].name);
    }
    if (!tensor_bytes_cap(t, dims, cap, &bytes))
      return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT, "%s '%s' with capacity %lld needs 2^62 bytes or more",
                           is_in ? "input" : "output", t->name, (long long)cap);
  }
  return ATTNRT_OK;
}

static attnrt_status check_sizes(attnrt_ctx *ctx, const char *kind,
                               const attnrt_tensor_desc *t, int64_t n,
                               const int64_t *dims) {
  for (int64_t i = 0; i < n; i++) {
    int64_t bytes;
    if (!tensor_bytes(&t[i], dims, &bytes)) {
      char sym[96];
      int64_t shape[ATTNRT_MAX_RANK] = {0};
      char num[96];
      resolve(&t[i], dims, shape);
      return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT,
                           "%s '%s' of shape %s = %s needs 2^62 bytes or more",
                           kind, t[i].name,
                           attnrt_fmt_shape(sym, sizeof sym, (int)t[i].rank, t[i].dims, ctx->model),
                           attnrt_fmt_shape(num, sizeof num, (int)t[i].rank, shape, NULL));
    }
  }
  return ATTNRT_OK;
}

static attnrt_status check_pointers(attnrt_ctx *ctx, const char *kind, const char *array_name,
                                  const attnrt_tensor_desc *t, int64_t n,
                                  void *const *ptrs) {
  if (n == 0)
    return ATTNRT_OK;
  if (ptrs == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "%s is NULL but model '%s' has %lld %ss",
                         array_name, ctx->model->name, (long long)n, kind);
  for (int64_t i = 0; i < n; i++)
    if (ptrs[i] == NULL)
      return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "%s '%s' is NULL", kind, t[i].name);
  return ATTNRT_OK;
}

/* Outputs are written while inputs are still being read, and kernels keep
 * partial results in outputs: an output that shares bytes with an input or
 * with another output would give wrong answers without any error.  Byte
 * ranges come from the dims (every size was checked above). */
static attnrt_status check_overlaps(attnrt_ctx *ctx, void *const *inputs, void *const *outputs,
                                  const int64_t *dims) {
  const attnrt_model_desc *m = ctx->model;
  for (int64_t o = 0; o < m->n_outputs; o++) {
    int64_t ob = 0;
    tensor_bytes_cap(&m->outputs[o], dims, capacity_of(ctx, false, o), &ob);
    uintptr_t lo = (uintptr_t)outputs[o], hi = lo + (uintptr_t)ob;
    for (int64_t k = 0; k < m->n_inputs + o; k++) {
      bool is_in = k < m->n_inputs;
      const attnrt_tensor_desc *t = is_in ? &m->inputs[k] : &m->outputs[k - m->n_inputs];
      void *p = is_in ? inputs[k] : outputs[k - m->n_inputs];
      int64_t b = 0;
      tensor_bytes_cap(t, dims, capacity_of(ctx, is_in, is_in ? k : k - m->n_inputs), &b);
      uintptr_t plo = (uintptr_t)p, phi = plo + (uintptr_t)b;
      /* a stacked cache's output may be given its input's buffer when both
       * are laid out by a capacity */
      bool stacked = is_in && m->stacks != NULL && m->stacks[o] == k;
      if (stacked && p == outputs[o] && ctx->capacity[k] > 0)
        continue;
      if (stacked && ob > 0 && b > 0 && lo < phi && plo < hi)
        return attnrt_ctx_fail(ctx, ATTNRT_E_ARG,
                             ctx->capacity[k] > 0
                                 ? "output '%s' overlaps input '%s' in memory without being it: with a capacity "
                                   "it may be given exactly the input's buffer (an append in place), or a "
                                   "separate one"
                                 : "output '%s' overlaps input '%s' in memory: a stacked cache is appended in "
                                   "place only with a capacity (attnrt_ctx_set_capacity)",
                             m->outputs[o].name, t->name);
      /* an output that appends to this input may be given its buffer */
      if (is_in && m->appends != NULL && m->appends[o] == k && p == outputs[o])
        continue;
      if (ob > 0 && b > 0 && lo < phi && plo < hi && is_in && m->appends != NULL && m->appends[o] == k)
        return attnrt_ctx_fail(ctx, ATTNRT_E_ARG,
                             "output '%s' overlaps input '%s' in memory without being it: it may be given "
                             "exactly the input's buffer (an in-place append), or a separate one",
                             m->outputs[o].name, t->name);
      if (ob > 0 && b > 0 && lo < phi && plo < hi)
        return attnrt_ctx_fail(ctx, ATTNRT_E_ARG,
                             "output '%s' overlaps %s '%s' in memory; an output may not share "
                             "its buffer with an input or another output",
                             m->outputs[o].name, is_in ? "input" : "output", t->name);
    }
  }
  return ATTNRT_OK;
}

/* Scratch memory that holds need bytes: the caller's buffer if it set one,
 * else the context's own, grown only when need exceeds what it has. */
static attnrt_status get_scratch(attnrt_ctx *ctx, int64_t need, void **out) {
  if (need < 0 || need >= ATTNRT_BYTES_MAX)
    return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT,
                         "scratch memory for these dims overflows (%lld bytes)",
                         (long long)need);
  if ((uint64_t)need > SIZE_MAX - 64)
    return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT, "scratch memory of %lld bytes cannot be addressed",
                         (long long)need);
  if (ctx->user_scratch != NULL) {
    if (ctx->user_scratch_size < (size_t)need)
      return attnrt_ctx_fail(ctx, ATTNRT_E_ARG,
                           "scratch buffer of %zu bytes is too small: these dims need %lld bytes",
                           ctx->user_scratch_size, (long long)need);
    *out = ctx->user_scratch;
    return ATTNRT_OK;
  }
  if (ctx->scratch == NULL || ctx->scratch_cap < (size_t)need) {
    /* aligned_alloc wants a multiple of the alignment; never ask for 0.
     * Growing by half again at the least: a decoding loop, whose cache
     * (and scratch) grows by a row per call, reallocates (and faults in
     * fresh pages) a logarithmic number of times, not on every call. */
    size_t cap = ((size_t)need + 63) / 64 * 64;
    size_t more = ctx->scratch_cap + ctx->scratch_cap / 2;
    if (ctx->scratch != NULL && more > cap && more < (size_t)ATTNRT_BYTES_MAX)
      cap = (more + 63) / 64 * 64;
    if (cap == 0)
      cap = 64;
    void *p = aligned_alloc(64, cap);
    if (p == NULL)
      return attnrt_ctx_fail(ctx, ATTNRT_E_NOMEM, "cannot allocate %zu bytes of scratch memory", cap);
    free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_cap = cap;
  }
  *out = ctx->scratch;
  return ATTNRT_OK;
}

/* The params laid out for the kernels (the weights' GEMM panels), once per
 * binding: the first run after a bind or load does it. */
static attnrt_status prepare(attnrt_ctx *ctx) {
  const attnrt_model_desc *m = ctx->model;
  int64_t need = m->prepared_size != NULL ? m->prepared_size(NULL) : 0;
  if (need < 0 || need >= ATTNRT_BYTES_MAX)
    return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT, "model '%s': bad prepared size %lld", m->name, (long long)need);
  if (ctx->prepared == NULL) {
    size_t cap = ((size_t)need + 63) / 64 * 64;
    if (posix_memalign(&ctx->prepared, 64, cap > 0 ? cap : 64) != 0) {
      ctx->prepared = NULL;
      return attnrt_ctx_fail(ctx, ATTNRT_E_NOMEM, "cannot allocate %lld bytes for the prepared weights",
                           (long long)need);
    }
  }
  int32_t r = m->prepare(ctx, ctx->params, ctx->prepared);
  if (r != ATTNRT_OK)
    return ctx->err[0] ? (attnrt_status)r
                       : attnrt_ctx_fail(ctx, (attnrt_status)r, "model '%s': preparing the weights failed", m->name);
  ctx->prepared_ok = true;
  return ATTNRT_OK;
}

attnrt_status attnrt_run(attnrt_ctx *ctx, void *const *inputs, void *const *outputs,
                     const int64_t *dims) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  if (!ctx->model_ok)
    return bad_model(ctx);
  const attnrt_model_desc *m = ctx->model;
  for (int64_t i = 0; i < m->n_params; i++)
    if (ctx->params[i] == NULL)
      return attnrt_ctx_fail(ctx, ATTNRT_E_MISSING,
                           "parameter '%s' of model '%s' is not bound "
                           "(load a weights file or bind it)", m->params[i].name, m->name);
  int64_t all[ATTNRT_MAX_DIMS + 1];
  attnrt_status s = check_pointers(ctx, "input", "inputs", m->inputs, m->n_inputs, inputs);
  if (s == ATTNRT_OK)
    s = check_pointers(ctx, "output", "outputs", m->outputs, m->n_outputs, outputs);
  if (s == ATTNRT_OK)
    s = check_dims(ctx, dims, all);
  dims = all;
  if (s == ATTNRT_OK)
    s = check_sizes(ctx, "parameter", m->params, m->n_params, dims);
  if (s == ATTNRT_OK)
    s = check_sizes(ctx, "input", m->inputs, m->n_inputs, dims);
  if (s == ATTNRT_OK)
    s = check_sizes(ctx, "output", m->outputs, m->n_outputs, dims);
  if (s == ATTNRT_OK)
    s = check_capacities(ctx, dims);
  if (s == ATTNRT_OK)
    s = check_overlaps(ctx, inputs, outputs, dims);
  if (s != ATTNRT_OK)
    return s;
  int64_t need = m->scratch_size != NULL ? m->scratch_size(dims) : 0;
  void *scratch = NULL;
  s = get_scratch(ctx, need, &scratch);
  if (s != ATTNRT_OK)
    return s;
  if (m->prepare != NULL && !ctx->prepared_ok) {
    s = prepare(ctx);
    if (s != ATTNRT_OK)
      return s;
  }
  int32_t r = m->body(ctx, ctx->params, inputs, outputs, dims, scratch, ctx->prepared);
  if (r != ATTNRT_OK && ctx->err[0] == '\0')
    attnrt_ctx_fail(ctx, (attnrt_status)r, "model '%s' failed: %s", m->name,
                  attnrt_status_str((attnrt_status)r));
  return (attnrt_status)r;
}

int64_t attnrt_scratch_size(const attnrt_model_desc *model, const int64_t *dims) {
  char err[8];
  if (!attnrt_check_model(model, err, sizeof err))
    return -1;
  if (model->n_dims > 0 && dims == NULL)
    return -1;
  int64_t all[ATTNRT_MAX_DIMS + 1];
  for (int64_t d = 0; d < model->n_dims; d++)
    all[d] = dims[d];
  if (attnrt_complete_dims(model, all, NULL, 0) != ATTNRT_OK)
    return -1;
  if (model->scratch_size == NULL)
    return 0;
  int64_t n = model->scratch_size(all);
  return n >= 0 ? n : -1;
}

/* ---- binding dims from input shapes ------------------------------------- */

/* The first place (input, axis) where symbolic dim sym appears, scanning in
 * descriptor order; used to name who set a dim when another input disagrees. */
static void first_use(const attnrt_model_desc *m, int64_t sym, int64_t *input, int64_t *axis) {
  for (int64_t i = 0; i < m->n_inputs; i++)
    for (int64_t a = 0; a < m->inputs[i].rank; a++)
      if (m->inputs[i].dims[a] == -(sym + 1)) {
        *input = i;
        *axis = a;
        return;
      }
}

static attnrt_status dim_conflict(attnrt_ctx *ctx, int64_t i, int64_t a, int64_t got,
                                int64_t sym, int64_t set) {
  const attnrt_model_desc *m = ctx->model;
  int64_t fi = 0, fa = 0;
  first_use(m, sym, &fi, &fa);
  const char *name = dim_name(m, sym);
  if (fi == i)
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                         "input '%s': dim %lld (%s) is %lld but dim %lld set %s = %lld",
                         m->inputs[i].name, (long long)a, name, (long long)got,
                         (long long)fa, name, (long long)set);
  return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                       "input '%s': dim %lld (%s) is %lld but input '%s' set %s = %lld",
                       m->inputs[i].name, (long long)a, name, (long long)got,
                       m->inputs[fi].name, name, (long long)set);
}

static attnrt_status bind_input(attnrt_ctx *ctx, int64_t i, const attnrt_tensor *t, int64_t *dims) {
  const attnrt_model_desc *m = ctx->model;
  const attnrt_tensor_desc *d = &m->inputs[i];
  char want[96], got[96];
  if (t->dtype != (attnrt_dtype)d->dtype)
    return attnrt_ctx_fail(ctx, ATTNRT_E_DTYPE, "input '%s' is %s but model '%s' expects %s",
                         d->name, attnrt_dtype_name(t->dtype), m->name, attnrt_dtype_name(d->dtype));
  if (t->rank < 0 || t->rank > ATTNRT_MAX_RANK)
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE, "input '%s' has rank %d (must be 0 to %d)",
                         d->name, t->rank, ATTNRT_MAX_RANK);
  if (t->rank != d->rank)
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                         "input '%s' has rank %d %s but model '%s' expects rank %lld %s",
                         d->name, t->rank, attnrt_fmt_shape(got, sizeof got, t->rank, t->dims, NULL),
                         m->name, (long long)d->rank,
                         attnrt_fmt_shape(want, sizeof want, (int)d->rank, d->dims, m));
  for (int64_t a = 0; a < d->rank; a++) {
    int64_t v = t->dims[a], want_dim = d->dims[a];
    if (want_dim >= 0) {
      if (v != want_dim)
        return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                             "input '%s': dim %lld is %lld but model '%s' expects %lld (shape %s)",
                             d->name, (long long)a, (long long)v, m->name, (long long)want_dim,
                             attnrt_fmt_shape(want, sizeof want, (int)d->rank, d->dims, m));
      continue;
    }
    int64_t sym = -(want_dim + 1);
    if (is_sum(m, sym))
      continue;   /* checked once the base dims are bound */
    if (v < 0 || v > ATTNRT_DIM_MAX)
      return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                           "input '%s': dim %lld (%s) is %lld, out of range [0, %lld]",
                           d->name, (long long)a, dim_name(m, sym), (long long)v,
                           (long long)ATTNRT_DIM_MAX);
    if (dims[sym] == -1)
      dims[sym] = v;
    else if (dims[sym] != v)
      return dim_conflict(ctx, i, a, v, sym, dims[sym]);
  }
  return ATTNRT_OK;
}

attnrt_status attnrt_bind_dims(attnrt_ctx *ctx, const attnrt_tensor *inputs, int64_t *dims) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  if (!ctx->model_ok)
    return bad_model(ctx);
  const attnrt_model_desc *m = ctx->model;
  if (m->n_inputs > 0 && inputs == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "inputs is NULL but model '%s' has %lld inputs",
                         m->name, (long long)m->n_inputs);
  if (m->n_dims > 0 && dims == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "dims is NULL but model '%s' has %lld symbolic dims",
                         m->name, (long long)m->n_dims);
  /* -1 marks a dim no input has set yet */
  for (int64_t d = 0; d < m->n_dims; d++)
    dims[d] = -1;
  for (int64_t i = 0; i < m->n_inputs; i++) {
    attnrt_status s = bind_input(ctx, i, &inputs[i], dims);
    if (s != ATTNRT_OK)
      return s;
  }
  for (int64_t d = 0; d < m->n_dims; d++)
    if (dims[d] == -1 && !is_sum(m, d))
      return attnrt_ctx_fail(ctx, ATTNRT_E_ARG,
                           "symbolic dim %s of model '%s' is not set by the shape of any input",
                           dim_name(m, d), m->name);
  char err[ATTNRT_ERR_LEN];
  if (attnrt_complete_dims(m, dims, err, sizeof err) != ATTNRT_OK)
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE, "%s", err);
  /* the sums where inputs have them */
  for (int64_t i = 0; i < m->n_inputs; i++)
    for (int64_t a = 0; a < m->inputs[i].rank; a++) {
      int64_t want = m->inputs[i].dims[a], sym = -(want + 1);
      if (want < 0 && is_sum(m, sym) && inputs[i].dims[a] != dims[sym]) {
        char terms[160];
        sum_terms(m, sym, dims, terms, sizeof terms);
        return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE, "input '%s': dim %lld (%s) is %lld but %s = %lld (%s)",
                             m->inputs[i].name, (long long)a, dim_name(m, sym), (long long)inputs[i].dims[a],
                             dim_name(m, sym), (long long)dims[sym], terms);
      }
    }
  return ATTNRT_OK;
}

attnrt_status attnrt_output_shape(const attnrt_model_desc *model, int i,
                              const int64_t *dims, attnrt_tensor *shape) {
  char err[8];
  if (shape == NULL || !attnrt_check_model(model, err, sizeof err))
    return ATTNRT_E_ARG;
  if (i < 0 || i >= model->n_outputs)
    return ATTNRT_E_RANGE;
  if (model->n_dims > 0 && dims == NULL)
    return ATTNRT_E_ARG;
  const attnrt_tensor_desc *t = &model->outputs[i];
  int64_t all[ATTNRT_MAX_DIMS + 1];
  for (int64_t d = 0; d < model->n_dims; d++)
    all[d] = dims[d];
  if (attnrt_complete_dims(model, all, NULL, 0) != ATTNRT_OK)
    return ATTNRT_E_ARG;
  memset(shape, 0, sizeof *shape);
  shape->dtype = (attnrt_dtype)t->dtype;
  shape->rank = (int)t->rank;
  resolve(t, all, shape->dims);
  return ATTNRT_OK;
}
