/* weights.c: binding parameters, one by name or all from a safetensors
 * file (parameter p from tensor PREFIX + p), converting F16, BF16 and F64
 * tensors to f32 (and any float tensor to bf16 for a bf16 param), with
 * messages that name the offending tensor. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <math.h>
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

static attnrt_status check_shape(attnrt_ctx *ctx, const attnrt_tensor_desc *d, const attnrt_tensor *t,
                               const char *where) {
  const attnrt_model_desc *m = ctx->model;
  char want[96], got[96];
  if (t->rank < 0 || t->rank > ATTNRT_MAX_RANK)
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE, "parameter '%s'%s has rank %d",
                         d->name, where, t->rank);
  if (!same_shape(d, t))
    return attnrt_ctx_fail(ctx, ATTNRT_E_SHAPE,
                         "parameter '%s'%s has shape %s, but model '%s' expects %s",
                         d->name, where, attnrt_fmt_shape(got, sizeof got, t->rank, t->dims, NULL),
                         m->name, attnrt_fmt_shape(want, sizeof want, (int)d->rank, d->dims, m));
  return ATTNRT_OK;
}

static attnrt_status check_param(attnrt_ctx *ctx, const attnrt_tensor_desc *d, const attnrt_tensor *t,
                               const char *where) {
  attnrt_status s = check_fixed(ctx, d);
  if (s != ATTNRT_OK)
    return s;
  /* a bf16 param also takes f32 data, which the caller's bind rounds */
  bool f32_for_bf16 = d->dtype == ATTNRT_BF16 && t->dtype == ATTNRT_F32;
  if (t->dtype != (attnrt_dtype)d->dtype && !f32_for_bf16)
    return attnrt_ctx_fail(ctx, ATTNRT_E_DTYPE,
                         "parameter '%s'%s has dtype %s, but model '%s' expects %s",
                         d->name, where, attnrt_dtype_name(t->dtype), ctx->model->name,
                         attnrt_dtype_name(d->dtype));
  s = check_shape(ctx, d, t, where);
  if (s != ATTNRT_OK)
    return s;
  /* Generated code loads elements directly. */
  int align = t->dtype == ATTNRT_BF16 ? 2 : 4;
  if ((uintptr_t)t->data % (uintptr_t)align != 0)
    return attnrt_ctx_fail(ctx, ATTNRT_E_ARG, "data of parameter '%s'%s is not %d-byte aligned",
                         d->name, where, align);
  return ATTNRT_OK;
}

/* A bf16 param bound to f32 data: its copy rounded to bf16, owned by the
 * ctx (64-byte aligned, as the loader's). */
static attnrt_status round_copy(attnrt_ctx *ctx, const attnrt_tensor_desc *d, const attnrt_tensor *t, void **out) {
  int64_t n = attnrt_tensor_numel(t), bytes;
  if (n < 0 || !attnrt_mul_i64(n, 2, &bytes) || !attnrt_add_i64(bytes, 63, &bytes) || bytes >= ATTNRT_BYTES_MAX ||
      (uint64_t)bytes > SIZE_MAX)
    return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT, "parameter '%s' is too large to round to bf16", d->name);
  uint16_t *p = aligned_alloc(64, bytes >= 64 ? (size_t)(bytes / 64 * 64) : 64);
  if (p == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_NOMEM, "out of memory rounding parameter '%s' to bf16 (%lld bytes)",
                         d->name, (long long)bytes);
  const float *src = t->data;
  for (int64_t k = 0; k < n; k++) {
    uint32_t bits;
    memcpy(&bits, &src[k], 4);
    p[k] = attnrt_f32_to_bf16(bits);
  }
  *out = p;
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
  void *copy = NULL;
  if (m->params[i].dtype == ATTNRT_BF16 && t->dtype == ATTNRT_F32) {
    s = round_copy(ctx, &m->params[i], t, &copy);
    if (s != ATTNRT_OK)
      return s;
  }
  free(ctx->rounded[i]);
  ctx->rounded[i] = copy;
  ctx->params[i] = copy != NULL ? copy : t->data;
  ctx->prepared_ok = false;   /* laid out again before the next run */
  return ATTNRT_OK;
}

/* ---- loading a safetensors file --------------------------------------- */

/* One load: the file, the prefix, and the names it builds. */
typedef struct load {
  attnrt_ctx *ctx;
  attnrt_safetensors *st;
  const char *path;
  const char *prefix;        /* "" for none */
  size_t prefix_len;
  char *tname;               /* PREFIX + a param name, room for the longest */
} load;

/* Where a param of this load came from, once match_param has checked it. */
typedef struct param_src {
  int entry;                 /* its tensor in the file */
  attnrt_st_raw raw;
} param_src;

static bool converts_to_f32(attnrt_st_kind k) {
  return k == ATTNRT_ST_F16 || k == ATTNRT_ST_BF16 || k == ATTNRT_ST_F64;
}

/* Does param d need a converted copy of the file's tensor?  An f32 param
 * of an F16/BF16/F64 tensor; a bf16 param of anything but a BF16 tensor
 * it can use in place (little-endian host, 2-byte aligned in the map). */
static bool needs_copy(const attnrt_tensor_desc *d, const attnrt_st_raw *raw) {
  if (d->dtype == ATTNRT_BF16)
    return !(raw->kind == ATTNRT_ST_BF16 && attnrt_host_is_le() && (uintptr_t)raw->bytes % 2 == 0);
  return d->dtype == ATTNRT_F32 && converts_to_f32(raw->kind);
}

static int64_t elem_size(const attnrt_tensor_desc *d) { return d->dtype == ATTNRT_BF16 ? 2 : 4; }

/* The tensor that holds param name: PREFIX + name. */
static const char *tensor_name(load *l, const char *name) {
  memcpy(l->tname, l->prefix, l->prefix_len);
  strcpy(l->tname + l->prefix_len, name);
  return l->tname;
}

/* " in FILE", or " (tensor 'PREFIX.p') in FILE" when a prefix makes the
 * tensor's name differ from the param's. */
static void format_where(const load *l, const char *tname, char *where, size_t len) {
  if (l->prefix_len > 0)
    snprintf(where, len, " (tensor '%s') in %s", tname, l->path);
  else
    snprintf(where, len, " in %s", l->path);
}

/* Issue 19: a state_dict saved from a bigger module has every param under a
 * longer name ("encoder.layers.0.x.weight" for "x.weight").  When the file
 * holds the param under such a name, or (with a prefix) under its own
 * name, the message says so and which prefix would bind it: "" if there
 * is no such tensor. */
static void missing_hint(const load *l, const char *name, char *hint, size_t len) {
  hint[0] = '\0';
  if (l->prefix_len > 0 && attnrt_st_find(l->st, name) >= 0) {
    snprintf(hint, len, "; the file has '%s': load it with no prefix", name);
    return;
  }
  size_t nlen = strlen(name);
  int n = attnrt_st_count(l->st), found = 0;
  const char *first = NULL;
  for (int j = 0; j < n; j++) {
    const char *t = attnrt_st_name(l->st, j);
    size_t tlen = strlen(t);
    if (tlen > nlen && t[tlen - nlen - 1] == '.' && strcmp(t + tlen - nlen, name) == 0) {
      if (found++ == 0)
        first = t;
    }
  }
  if (found == 0)
    return;
  int plen = (int)(strlen(first) - nlen);
  if (found == 1)
    snprintf(hint, len, "; the file has '%s': use --weights-prefix '%.*s' "
             "(attnrt_ctx_load_weights_prefix)", first, plen, first);
  else
    snprintf(hint, len, "; the file has '%s' and %d more tensors ending in '.%s': "
             "use --weights-prefix '%.*s' (attnrt_ctx_load_weights_prefix) for the first",
             first, found - 1, name, plen, first);
}

/* Finds and checks param i in the file: its name, dtype and shape. */
static attnrt_status match_param(load *l, int64_t i, param_src *src) {
  attnrt_ctx *ctx = l->ctx;
  const attnrt_model_desc *m = ctx->model;
  const attnrt_tensor_desc *d = &m->params[i];
  char where[ATTNRT_ERR_LEN];
  attnrt_status s = check_fixed(ctx, d);
  if (s != ATTNRT_OK)
    return s;
  const char *tname = tensor_name(l, d->name);
  format_where(l, tname, where, sizeof where);
  int j = attnrt_st_find(l->st, tname);
  if (j < 0) {
    char hint[ATTNRT_ERR_LEN];
    missing_hint(l, d->name, hint, sizeof hint);
    return attnrt_ctx_fail(ctx, ATTNRT_E_MISSING, "missing parameter '%s'%s%s", d->name, where, hint);
  }
  attnrt_st_raw_get(l->st, j, &src->raw);
  src->entry = j;
  attnrt_st_kind k = src->raw.kind;
  bool ok = d->dtype == ATTNRT_I32 ? k == ATTNRT_ST_I32 : k == ATTNRT_ST_F32 || converts_to_f32(k);
  /* The file's own spelling of its dtype ("I64") says best what is there. */
  if (!ok)
    return attnrt_ctx_fail(ctx, ATTNRT_E_DTYPE,
                         "parameter '%s'%s has dtype %s, but model '%s' expects %s",
                         d->name, where, attnrt_st_dtype(l->st, j), m->name,
                         d->dtype == ATTNRT_I32 ? "I32" : d->dtype == ATTNRT_BF16 ? "BF16 (or F32, F16, F64)" : "F32");
  attnrt_tensor t = {(attnrt_dtype)d->dtype, src->raw.rank, {0}, (void *)src->raw.bytes};
  for (int a = 0; a < t.rank && a < ATTNRT_MAX_RANK; a++)
    t.dims[a] = src->raw.dims[a];
  /* Converted data lands in an aligned buffer; data used in place is
   * checked as a caller's would be. */
  return needs_copy(d, &src->raw) ? check_shape(ctx, d, &t, where) : check_param(ctx, d, &t, where);
}

/* IEEE binary16 to binary32: exact, every f16 value is an f32 value. */
static uint32_t f16_to_f32_bits(uint32_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  if (exp == 0x1F) /* inf and NaN: the payload widened, so a NaN stays one */
    return sign | 0x7F800000u | mant << 13;
  if (exp != 0) /* normal: the exponent rebiased from 15 to 127 */
    return sign | (exp + 112) << 23 | mant << 13;
  if (mant == 0)
    return sign;
  /* Subnormal, mant * 2^-24: an f32 normal.  Shift the leading 1 up to
   * bit 10 (the implicit bit), lowering the exponent from 2^-14 each time. */
  uint32_t e = 113;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    e--;
  }
  return sign | e << 23 | (mant & 0x3FFu) << 13;
}

/* Stores element k of f32 bits into dst: f32, or rounded to bf16. */
static void put(void *dst, bool bf16, int64_t k, uint32_t bits) {
  if (bf16)
    ((uint16_t *)dst)[k] = attnrt_f32_to_bf16(bits);
  else
    memcpy((float *)dst + k, &bits, 4);
}

/* Converts param i's n elements into dst (f32, or bf16 for a bf16 param,
 * host order).  The file's bytes are little-endian whatever the host, and
 * may be misaligned in the mapping, so they are read byte by byte; F32
 * data is already aligned and in host order (attnrt_st_raw). */
static attnrt_status convert(load *l, int64_t i, const attnrt_st_raw *raw, void *dst) {
  const unsigned char *b = raw->bytes;
  int64_t n = raw->numel;
  bool bf16 = l->ctx->model->params[i].dtype == ATTNRT_BF16;
  switch (raw->kind) {
  case ATTNRT_ST_F32:
    for (int64_t k = 0; k < n; k++) {
      uint32_t bits;
      memcpy(&bits, b + 4 * k, 4);
      put(dst, bf16, k, bits);
    }
    return ATTNRT_OK;
  case ATTNRT_ST_F16:
  case ATTNRT_ST_BF16:
    for (int64_t k = 0; k < n; k++) {
      uint32_t h = (uint32_t)b[2 * k] | (uint32_t)b[2 * k + 1] << 8;
      uint32_t bits = raw->kind == ATTNRT_ST_F16 ? f16_to_f32_bits(h) : h << 16;
      put(dst, bf16, k, bits);   /* exact: a bf16 value rounds to itself */
    }
    return ATTNRT_OK;
  case ATTNRT_ST_F64:
    for (int64_t k = 0; k < n; k++) {
      uint64_t bits = 0;
      for (int by = 7; by >= 0; by--)
        bits = bits << 8 | b[8 * k + by];
      double v;
      memcpy(&v, &bits, 8);
      /* Round to nearest even, as the cast does.  A finite value at or past
       * FLT_MAX + half an ulp would round to inf: that changes what the
       * model computes, so it is an error, not a silent inf (an inf or a
       * NaN in the file stays one). */
      if (isfinite(v) && fabs(v) >= 0x1.ffffffp127) {
        char where[ATTNRT_ERR_LEN];
        const attnrt_tensor_desc *d = &l->ctx->model->params[i];
        format_where(l, tensor_name(l, d->name), where, sizeof where);
        return attnrt_ctx_fail(l->ctx, ATTNRT_E_RANGE,
                             "parameter '%s'%s: the F64 value %.10g at element %lld is beyond "
                             "the range of f32 (it would round to %sinf)",
                             d->name, where, v, (long long)k, v < 0 ? "-" : "");
      }
      float f = (float)v;
      uint32_t fb;
      memcpy(&fb, &f, 4);
      put(dst, bf16, k, fb);
    }
    return ATTNRT_OK;
  default:
    return ATTNRT_OK;
  }
}

/* The f32 copies of the params that need converting, in one 64-byte
 * aligned block (each param at a multiple of 64 bytes, as embedded weights
 * are); data[i] is where param i's data is, in the block or in the
 * mapping.  *block is NULL if nothing needed converting. */
static attnrt_status convert_all(load *l, const param_src *src, void **data, void **block) {
  attnrt_ctx *ctx = l->ctx;
  int64_t np = ctx->model->n_params, total = 0;
  *block = NULL;
  bool any = false;
  for (int64_t i = 0; i < np; i++) {
    int64_t bytes;
    if (!needs_copy(&ctx->model->params[i], &src[i].raw))
      continue;
    any = true;
    if (!attnrt_mul_i64(src[i].raw.numel, elem_size(&ctx->model->params[i]), &bytes) ||
        !attnrt_add_i64(bytes, 63, &bytes) ||
        !attnrt_add_i64(total, bytes / 64 * 64, &total) || total >= ATTNRT_BYTES_MAX ||
        (uint64_t)total > SIZE_MAX)
      return attnrt_ctx_fail(ctx, ATTNRT_E_LIMIT, "%s: the parameters converted to f32 need more "
                           "memory than can be addressed", l->path);
  }
  for (int64_t i = 0; i < np; i++)
    data[i] = (void *)src[i].raw.bytes;
  if (!any)
    return ATTNRT_OK;
  /* aligned_alloc wants a multiple of the alignment, and never 0. */
  char *p = aligned_alloc(64, total > 0 ? (size_t)total : 64);
  if (p == NULL)
    return attnrt_ctx_fail(ctx, ATTNRT_E_NOMEM, "out of memory converting the weights of %s to f32 "
                         "(%lld bytes)", l->path, (long long)total);
  size_t off = 0;
  for (int64_t i = 0; i < np; i++) {
    if (!needs_copy(&ctx->model->params[i], &src[i].raw))
      continue;
    data[i] = p + off;
    attnrt_status s = convert(l, i, &src[i].raw, data[i]);
    if (s != ATTNRT_OK) {
      free(p);
      return s;
    }
    off += ((size_t)src[i].raw.numel * (size_t)elem_size(&ctx->model->params[i]) + 63) / 64 * 64;
  }
  *block = p;
  return ATTNRT_OK;
}

/* Tensors the model does not use: one line each (up to WARNINGS_MAX) for
 * those inside the prefix, a count for those outside it, which a file
 * saved from a bigger module has by design. */
static void warn_extras(load *l, const bool *used) {
  attnrt_ctx *ctx = l->ctx;
  int n = attnrt_st_count(l->st), shown = 0, hidden = 0, outside = 0;
  for (int j = 0; j < n; j++) {
    if (used[j])
      continue;
    const char *name = attnrt_st_name(l->st, j);
    if (strncmp(name, l->prefix, l->prefix_len) != 0) {
      outside++;
      continue;
    }
    if (shown == WARNINGS_MAX) {
      hidden++;
      continue;
    }
    add_warning(ctx, "ignoring tensor '%s' (not a parameter of model %s)", name, ctx->model->name);
    shown++;
  }
  if (hidden > 0)
    add_warning(ctx, "ignoring %d more tensor%s", hidden, hidden == 1 ? "" : "s");
  if (outside > 0)
    add_warning(ctx, "ignoring %d tensor%s outside the prefix '%s'", outside, outside == 1 ? "" : "s",
                l->prefix);
}

/* All params are checked (and converted) before any is bound: a bad file
 * leaves the context as it was. */
static attnrt_status bind_all(load *l) {
  attnrt_ctx *ctx = l->ctx;
  const attnrt_model_desc *m = ctx->model;
  size_t np = m->n_params > 0 ? (size_t)m->n_params : 1;
  int ne = attnrt_st_count(l->st);
  size_t longest = 0;
  for (int64_t i = 0; i < m->n_params; i++) {
    size_t len = strlen(m->params[i].name);
    longest = len > longest ? len : longest;
  }
  void **data = calloc(np, sizeof *data);
  param_src *src = calloc(np, sizeof *src);
  bool *used = calloc(ne > 0 ? (size_t)ne : 1, sizeof *used);
  /* Both lengths are of strings in memory, so the sum cannot wrap. */
  l->tname = malloc(l->prefix_len + longest + 1);
  void *block = NULL;
  attnrt_status s = ATTNRT_OK;
  if (data == NULL || src == NULL || used == NULL || l->tname == NULL)
    s = attnrt_ctx_fail(ctx, ATTNRT_E_NOMEM, "out of memory loading %s", l->path);
  for (int64_t i = 0; s == ATTNRT_OK && i < m->n_params; i++) {
    s = match_param(l, i, &src[i]);
    if (s == ATTNRT_OK)
      used[src[i].entry] = true;
  }
  if (s == ATTNRT_OK)
    s = convert_all(l, src, data, &block);
  if (s == ATTNRT_OK) {
    warn_extras(l, used);
    memcpy(ctx->params, data, (size_t)m->n_params * sizeof *data);
    for (int64_t i = 0; i < m->n_params; i++) {
      free(ctx->rounded[i]);   /* the old binds' bf16 copies */
      ctx->rounded[i] = NULL;
    }
    ctx->prepared_ok = false;
    /* Every param now points into the new mapping or the new block, so the
     * old ones can go. */
    attnrt_st_close(ctx->weights);
    ctx->weights = l->st;
    free(ctx->converted);
    ctx->converted = block;
  }
  free(data);
  free(src);
  free(used);
  free(l->tname);
  l->tname = NULL;
  return s;
}

attnrt_status attnrt_ctx_load_weights_prefix(attnrt_ctx *ctx, const char *path, const char *prefix) {
  if (ctx == NULL)
    return ATTNRT_E_ARG;
  ctx->err[0] = '\0';
  /* Warnings describe the last load, failed or not; everything else a
   * failed load leaves as it was. */
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
  load l = {ctx, st, path, prefix != NULL ? prefix : "", prefix != NULL ? strlen(prefix) : 0, NULL};
  s = bind_all(&l);
  if (s != ATTNRT_OK)
    attnrt_st_close(st);
  return s;
}

attnrt_status attnrt_ctx_load_weights(attnrt_ctx *ctx, const char *path) {
  return attnrt_ctx_load_weights_prefix(ctx, path, NULL);
}
