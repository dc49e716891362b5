/* internal.h: what the runtime's source files share and users never see. */
#ifndef ATTNRT_INTERNAL_H
#define ATTNRT_INTERNAL_H

#include "attnrt.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Messages name files and tensors, so leave room for a long path. */
#define ATTN_ERR_LEN 1024
/* Dims and tensor sizes the runtime accepts: a dim below 2^31, a tensor
 * below 2^62 bytes, so that generated index arithmetic never overflows. */
#define ATTN_DIM_MAX INT64_C(2147483647)
#define ATTN_BYTES_MAX (INT64_C(1) << 62)
/* Upper bound on threads per context: beyond it is a mistake, not a wish. */
#define ATTN_THREADS_MAX 1024

struct attn_pool;

struct attn_ctx {
  const attn_model_desc *model;
  bool model_ok;            /* the descriptor passed attn_check_model */
  void **params;            /* n_params data pointers, NULL = unbound */
  attn_safetensors *weights;/* owned mapping the params may point into */
  void *scratch;            /* owned, 64-byte aligned */
  size_t scratch_cap;
  void *user_scratch;       /* borrowed; used instead when not NULL */
  size_t user_scratch_size;
  int threads;
  struct attn_pool *pool;   /* created on the first parallel_for */
  char *warnings;           /* owned, NULL = no warnings */
  size_t warn_len, warn_cap;
  char err[ATTN_ERR_LEN];
};

/* Format into err (if err is not NULL and errlen > 0); always terminated. */
void attn_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void attn_verrf(char *err, size_t errlen, const char *fmt, va_list ap);

/* Record a formatted message on ctx and return status. */
attn_status attn_ctx_fail(attn_ctx *ctx, attn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Checked arithmetic on non-negative int64 values: false on overflow. */
bool attn_mul_i64(int64_t a, int64_t b, int64_t *out);
bool attn_add_i64(int64_t a, int64_t b, int64_t *out);

/* Validate a model descriptor's structure; the message goes to err. */
bool attn_check_model(const attn_model_desc *m, char *err, size_t errlen);

/* Render a shape as "[256, 64]" into buf (symbolic dims by name if model is
 * given).  Returns buf. */
const char *attn_fmt_shape(char *buf, size_t len, int rank, const int64_t *dims,
                           const attn_model_desc *model);
const char *attn_dtype_name(int64_t dtype);      /* "f32", "i32", "?" */

/* The text of errno value e, in buf. */
const char *attn_errno_str(int e, char *buf, size_t len);

/* The dtype string of entry i as written in the file ("F16"). */
const char *attn_st_dtype(const attn_safetensors *st, int i);

/* Thread pool (pool.c). */
struct attn_pool *attn_pool_new(int workers);
void attn_pool_free(struct attn_pool *pool);
int attn_pool_workers(const struct attn_pool *pool);
void attn_pool_run(struct attn_pool *pool, attn_kernel_fn fn, void *const *bufs,
                   const int64_t *dims, int64_t n, int64_t chunk);

#endif
