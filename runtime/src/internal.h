/* internal.h: what the runtime's source files share and users never see. */
#ifndef ATTNRT_INTERNAL_H
#define ATTNRT_INTERNAL_H

#include "attnrt.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Messages name files and tensors, so leave room for a long path. */
#define ATTNRT_ERR_LEN 1024
/* Dims and tensor sizes the runtime accepts: a dim below 2^31, a tensor
 * below 2^62 bytes, so that generated index arithmetic never overflows. */
#define ATTNRT_DIM_MAX INT64_C(2147483647)
#define ATTNRT_BYTES_MAX (INT64_C(1) << 62)
/* Upper bound on threads per context: beyond it is a mistake, not a wish. */
#define ATTNRT_THREADS_MAX 1024

struct attnrt_pool;

struct attnrt_ctx {
  const attnrt_model_desc *model;
  bool model_ok;            /* the descriptor passed attnrt_check_model */
  void **params;            /* n_params data pointers, NULL = unbound */
  int64_t *capacity;        /* n_inputs: a stacked cache's rows per layer
                               (attnrt_ctx_set_capacity), 0 = dense */
  attnrt_safetensors *weights;/* owned mapping the params may point into */
  void *converted;          /* owned, 64-byte aligned: params converted to f32
                               from F16/BF16/F64 (or to bf16) by the last
                               load, or NULL */
  void **rounded;           /* n_params, owned: a bf16 param's copy rounded
                               from f32 data bound by attnrt_ctx_bind_param,
                               or NULL */
  void *scratch;            /* owned, 64-byte aligned */
  size_t scratch_cap;
  void *user_scratch;       /* borrowed; used instead when not NULL */
  void *prepared;           /* owned, 64-byte aligned: model->prepare's output */
  bool prepared_ok;         /* prepared holds the bound params' layout */
  size_t user_scratch_size;
  int threads;
  struct attnrt_pool *pool;   /* created on the first parallel_for */
  char *warnings;           /* owned, NULL = no warnings */
  size_t warn_len, warn_cap;
  char err[ATTNRT_ERR_LEN];
};

/* Format into err (if err is not NULL and errlen > 0); always terminated. */
void attnrt_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void attnrt_verrf(char *err, size_t errlen, const char *fmt, va_list ap);

/* Record a formatted message on ctx and return status. */
attnrt_status attnrt_ctx_fail(attnrt_ctx *ctx, attnrt_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Checked arithmetic on non-negative int64 values: false on overflow. */
bool attnrt_mul_i64(int64_t a, int64_t b, int64_t *out);
bool attnrt_add_i64(int64_t a, int64_t b, int64_t *out);

/* Validate a model descriptor's structure; the message goes to err. */
bool attnrt_check_model(const attnrt_model_desc *m, char *err, size_t errlen);

/* Render a shape as "[256, 64]" into buf (symbolic dims by name if model is
 * given).  Returns buf. */
const char *attnrt_fmt_shape(char *buf, size_t len, int rank, const int64_t *dims,
                           const attnrt_model_desc *model);
const char *attnrt_dtype_name(int64_t dtype);      /* "f32", "i32", "?" */

/* The text of errno value e, in buf. */
const char *attnrt_errno_str(int e, char *buf, size_t len);

/* The dtype string of entry i as written in the file ("F16"). */
const char *attnrt_st_dtype(const attnrt_safetensors *st, int i);

/* How the loader can use an entry's elements. */
typedef enum attnrt_st_kind {
  ATTNRT_ST_F32,            /* used in place (or an aligned copy) */
  ATTNRT_ST_I32,
  ATTNRT_ST_F16,            /* converted to f32 when bound */
  ATTNRT_ST_BF16,
  ATTNRT_ST_F64,
  ATTNRT_ST_OTHER           /* I64, U8, BOOL, F8_*...: not bindable */
} attnrt_st_kind;

/* Entry i as stored.  dims holds the first ATTNRT_MAX_RANK dims (a
 * bindable tensor has no more); bytes points at numel little-endian
 * elements in the mapping (or, for F32/I32, at the copy that made them
 * aligned and in host order), NULL for ATTNRT_ST_OTHER. */
typedef struct attnrt_st_raw {
  attnrt_st_kind kind;
  int rank;
  int64_t dims[ATTNRT_MAX_RANK];
  int64_t numel;
  const void *bytes;
} attnrt_st_raw;
attnrt_status attnrt_st_raw_get(const attnrt_safetensors *st, int i, attnrt_st_raw *out);

/* Reverse the bytes of each of n 4-byte elements at p: npy and safetensors
 * data is little-endian, a big-endian host swaps it. */
void attnrt_swap4(void *p, int64_t n);

/* f32 -> bf16, round to nearest even; a NaN stays a NaN (quiet, its sign
 * and upper payload kept), an f32 past the largest bf16 rounds to inf as
 * the cast in PyTorch does. */
static inline uint16_t attnrt_f32_to_bf16(uint32_t bits) {
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return (uint16_t)((bits >> 16) | 0x0040u);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return (uint16_t)(bits >> 16);
}

/* True on a little-endian host: npy and safetensors data are little-endian. */
static inline bool attnrt_host_is_le(void) {
  const uint32_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* Thread pool (pool.c). */
struct attnrt_pool *attnrt_pool_new(int workers);
void attnrt_pool_free(struct attnrt_pool *pool);
int attnrt_pool_workers(const struct attnrt_pool *pool);
void attnrt_pool_run(struct attnrt_pool *pool, attnrt_kernel_fn fn, void *const *bufs,
                   const int64_t *dims, int64_t n, int64_t chunk);

#endif
