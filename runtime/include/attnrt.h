/* attnrt.h: the attnc runtime, libattnrt.
 *
 * An object file made by attnc calls only into this library.  It holds no
 * math: status codes and messages, tensor descriptors, contexts (bound
 * parameters, scratch memory, a thread pool), and the readers for
 * safetensors and npy files.  Plain C99; never owns caller buffers. */
#ifndef ATTNRT_H
#define ATTNRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTNRT_ABI_VERSION 3
#define ATTNRT_MAX_RANK 4

/* ---- status ----------------------------------------------------------- */
typedef enum attnrt_status {
  ATTNRT_OK = 0,
  ATTNRT_E_ARG = 1,        /* a bad argument: NULL pointer, wrong dims, bad name */
  ATTNRT_E_IO = 2,         /* a file could not be opened, mapped or written */
  ATTNRT_E_FORMAT = 3,     /* a file is not a well-formed safetensors/npy file */
  ATTNRT_E_MISSING = 4,    /* a required parameter is not bound */
  ATTNRT_E_SHAPE = 5,      /* a tensor has the wrong shape */
  ATTNRT_E_DTYPE = 6,      /* a tensor has the wrong dtype */
  ATTNRT_E_RANGE = 7,      /* an id or index out of range; an F64 weight past f32 */
  ATTNRT_E_NOMEM = 8,      /* memory could not be allocated */
  ATTNRT_E_LIMIT = 9       /* a size beyond what can be addressed */
} attnrt_status;

/* A static description of a status ("shape mismatch"). */
const char *attnrt_status_str(attnrt_status s);

/* ---- tensor descriptors ------------------------------------------------ */
/* ATTNRT_BF16: bfloat16, the upper 16 bits of an f32 (uint16_t in host
 * order).  Only params have it: those a model compiled with attnc
 * --weights-dtype bf16 stores in bf16 (docs/c-api.md, "bf16 weights"). */
typedef enum attnrt_dtype { ATTNRT_F32 = 0, ATTNRT_I32 = 1, ATTNRT_BF16 = 2 } attnrt_dtype;

/* A dim in a descriptor: >= 0 a fixed size; < 0 the symbolic dim number
 * -(d + 1) of the model (see attnrt_model_desc.dim_names). */
typedef struct attnrt_tensor_desc {
  const char *name;
  int64_t dtype;                    /* attnrt_dtype */
  int64_t rank;
  int64_t dims[ATTNRT_MAX_RANK];
} attnrt_tensor_desc;

/* A symbolic dim that is a sum of others (design.md 5.3: `T+1` from a
 * concat, `P+T` in an input type): k + sum of coef[i] * dims[sym[i]] over
 * n_terms base dims.  A base dim (n_terms 0) is given by the caller; a sum
 * is computed by the runtime from the base dims, whatever the caller's
 * array holds there. */
#define ATTNRT_MAX_SUM_TERMS 8
typedef struct attnrt_dim_sum {
  int64_t n_terms;
  int64_t k;
  int64_t sym[ATTNRT_MAX_SUM_TERMS];
  int64_t coef[ATTNRT_MAX_SUM_TERMS];
} attnrt_dim_sum;

/* At most this many symbolic dims per model, sums included. */
#define ATTNRT_MAX_DIMS 64

struct attnrt_ctx;

/* The generated code's kernel signature: process rows [begin, end) of one
 * operation.  bufs holds a pointer per IR value, dims the symbolic dims. */
typedef void (*attnrt_kernel_fn)(void *const *bufs, const int64_t *dims,
                               int64_t begin, int64_t end);

/* What attnc emits for each model (as the constant NAME_model).  The field
 * order and types are the ABI: attnc's code generator lays out the same
 * struct. */
typedef struct attnrt_model_desc {
  int64_t abi_version;              /* ATTNRT_ABI_VERSION */
  const char *name;
  int64_t n_params, n_inputs, n_outputs, n_dims;
  const attnrt_tensor_desc *params;   /* n_params entries (may be NULL if 0) */
  const attnrt_tensor_desc *inputs;
  const attnrt_tensor_desc *outputs;
  const char *const *dim_names;     /* n_dims names, e.g. "T" */
  /* Runs the model.  params/inputs/outputs are arrays of data pointers in
   * descriptor order; dims holds n_dims values, already checked; scratch
   * holds scratch_size(dims) bytes, 64-byte aligned.  Returns ATTNRT_OK or an
   * error status after calling attnrt_fail. */
  int32_t (*body)(struct attnrt_ctx *ctx, void *const *params,
                  void *const *inputs, void *const *outputs,
                  const int64_t *dims, void *scratch, void *prepared);
  /* Bytes of scratch memory for these dims; -1 if they overflow. */
  int64_t (*scratch_size)(const int64_t *dims);
  /* NULL, or n_params pointers to weights embedded at compile time. */
  const void *const *embedded;
  /* Threads a new context starts with (attnc --threads): 0 means 1, -1
   * means all online CPUs. */
  int64_t default_threads;
  /* NULL if no dim is a sum, else n_dims entries. */
  const attnrt_dim_sum *dim_sums;
  /* Weights laid out once (design.md 5.4): prepare fills a buffer of
   * prepared_size(NULL) bytes, 64-byte aligned, from the bound params (the
   * GEMMs' packed panels of the weights); the runtime calls it before the
   * first run after params are bound and hands the buffer to every body
   * call (its last argument).  Both NULL when there is nothing to prepare. */
  int32_t (*prepare)(struct attnrt_ctx *ctx, void *const *params, void *prepared);
  int64_t (*prepared_size)(const int64_t *dims);
  /* In-place append (design.md 5.4, 5.7): NULL, or n_outputs entries, each
   * the input whose buffer that output may be given (exactly: the same
   * pointer, with room for the longer result; the call then writes only
   * the new rows), or -1. */
  const int64_t *appends;
  /* Stacked caches (design.md 5.4): NULL, or n_outputs entries, each the
   * input [N, P, ...] whose layers this output [N, P+T, ...] extends
   * (a layer array's caches), or -1.  Such an input and its outputs take
   * the capacity set with attnrt_ctx_set_capacity as their layer stride. */
  const int64_t *stacks;
} attnrt_model_desc;

/* A tensor that the runtime has read, or that a caller describes. */
typedef struct attnrt_tensor {
  attnrt_dtype dtype;
  int rank;
  int64_t dims[ATTNRT_MAX_RANK];
  void *data;                       /* borrowed (or owned, for attnrt_npy_read) */
} attnrt_tensor;

/* Number of elements, or -1 if the product overflows int64. */
int64_t attnrt_tensor_numel(const attnrt_tensor *t);

/* ---- contexts ------------------------------------------------------- */
/* A context runs one model: it holds the bound parameters (borrowed), the
 * scratch memory, the thread pool and the last error message.  Calls on
 * distinct contexts are safe from several threads at once; a context is
 * used by one thread at a time. */
typedef struct attnrt_ctx attnrt_ctx;

/* NULL only when out of memory.  Embedded weights, if any, are bound; the
 * thread count is the model's default (attnc --threads, else 1). */
attnrt_ctx *attnrt_ctx_new(const attnrt_model_desc *model);
void attnrt_ctx_free(attnrt_ctx *ctx);
const attnrt_model_desc *attnrt_ctx_model(const attnrt_ctx *ctx);

/* The message of the last error on this context ("" if none). */
const char *attnrt_ctx_error(const attnrt_ctx *ctx);

/* Threads for the generated code; 1 runs everything on the caller's thread.
 * 0 means the number of online CPUs. */
attnrt_status attnrt_ctx_set_threads(attnrt_ctx *ctx, int n);
int attnrt_ctx_threads(const attnrt_ctx *ctx);

/* Bind one parameter by name; data is borrowed and must outlive the ctx's
 * use.  Checks the name, dtype and shape against the descriptor.  A bf16
 * parameter (descriptor dtype ATTNRT_BF16) takes ATTNRT_BF16 data,
 * borrowed (2-byte aligned), or ATTNRT_F32 data, which is rounded to
 * nearest even into a copy the ctx owns (NaN stays NaN), so the caller's
 * buffer need not outlive the call. */
attnrt_status attnrt_ctx_bind_param(attnrt_ctx *ctx, const char *name,
                                const attnrt_tensor *t);

/* Map a safetensors file and bind every parameter of the model from it.
 * Every name, dtype, shape, offset and length is checked before use; a
 * missing, mis-shaped or mis-typed tensor is an error that names it, and
 * a failed load leaves the ctx's params as they were.  An f32 parameter
 * takes an F32 tensor in place (the mapping lives as long as the ctx, or
 * until the next successful load), or an F16, BF16 or F64 tensor
 * converted to f32 into memory the ctx owns (exactly; F64 rounds to
 * nearest even, and a finite F64 value that would round to inf is an
 * ATTNRT_E_RANGE error).  A bf16 parameter takes a BF16 tensor in place
 * (copied when misaligned), or an F32, F16 or F64 tensor rounded to bf16
 * (nearest even; F64 through f32) into memory the ctx owns.  An i32
 * parameter takes an I32 tensor.  Tensors
 * the model does not have are ignored: their names are reported through
 * attnrt_ctx_warnings(). */
attnrt_status attnrt_ctx_load_weights(attnrt_ctx *ctx, const char *path);
/* The same, binding parameter p to the tensor named PREFIX + p (a
 * state_dict saved from a bigger module: prefix "encoder.").  Tensors
 * whose names do not start with prefix are ignored with one warning that
 * counts them.  prefix NULL or "" is attnrt_ctx_load_weights. */
attnrt_status attnrt_ctx_load_weights_prefix(attnrt_ctx *ctx, const char *path,
                                             const char *prefix);
/* The data bound to parameter i (descriptor order), or NULL if unbound. */
const void *attnrt_ctx_param_data(const attnrt_ctx *ctx, int i);
/* Newline-separated warnings of the last load ("" if none, or if it failed). */
const char *attnrt_ctx_warnings(const attnrt_ctx *ctx);

/* The capacity form of a stacked cache (docs/c-api.md, "Caches"): input
 * NAME is a cache [N, P, ...] stacked over a layer array and some outputs
 * [N, P+T, ...] extend each of its layers (the descriptor's stacks).  With
 * capacity C > 0, that input and those outputs are laid out [N, C, ...]:
 * layer i starts C rows after layer i-1, and rows past P (P+T) are not
 * read (not written).  Each call then needs C >= P+T, and an output may be
 * given exactly the input's buffer: each layer appends its T new rows in
 * place, nothing else is written or copied.  C = 0 (the default) is the
 * dense layout, where an output may not share the input's buffer.  Stays
 * set until changed. */
attnrt_status attnrt_ctx_set_capacity(attnrt_ctx *ctx, const char *input, int64_t capacity);

/* Scratch memory: by default the runtime allocates it on first use and
 * grows it when larger dims need more (never in a call whose dims fit).
 * A caller may give its own (64-byte aligned) buffer instead; its size for
 * given dims is NAME_scratch_size(...) or attnrt_scratch_size(). */
attnrt_status attnrt_ctx_set_scratch(attnrt_ctx *ctx, void *buf, size_t size);
int64_t attnrt_scratch_size(const attnrt_model_desc *model, const int64_t *dims);

/* Run the model: inputs/outputs are data pointers in descriptor order,
 * dims the symbolic dims in order (n_dims values; the entries of dims that
 * are sums are ignored: the runtime computes them).  Checks that the ctx
 * runs this model, that every param is bound, that every dim (sums too) is
 * in [0, 2^31) (0: an empty tensor) and that no tensor's size overflows; then runs the body. */
attnrt_status attnrt_run(attnrt_ctx *ctx, void *const *inputs, void *const *outputs,
                     const int64_t *dims);

/* Bind the symbolic dims from the shapes of the given inputs (in
 * descriptor order).  Checks dtypes, ranks and fixed dims, and that a
 * symbolic dim gets one value; a dim that is a sum is computed and must
 * equal the shape where an input has it; the message goes to ctx. */
attnrt_status attnrt_bind_dims(attnrt_ctx *ctx, const attnrt_tensor *inputs,
                           int64_t *dims);
/* Compute the dims that are sums from the base dims of dims (n_dims
 * entries) in place; checks every dim is in [0, 2^31).  On failure writes
 * a message to err (if not NULL) and returns ATTNRT_E_ARG. */
attnrt_status attnrt_complete_dims(const attnrt_model_desc *model, int64_t *dims, char *err, size_t errlen);
/* The shape of output i for these dims. */
attnrt_status attnrt_output_shape(const attnrt_model_desc *model, int i,
                              const int64_t *dims, attnrt_tensor *shape);

/* ---- npy and safetensors ----------------------------------------------- */
/* Read a .npy file: C order, little-endian <f4 or <i4, rank 0..4.  On
 * success t->data is malloc'ed and owned by the caller (attnrt_tensor_free).
 * On failure returns an error and writes a message to err (if not NULL). */
attnrt_status attnrt_npy_read(const char *path, attnrt_tensor *t, char *err, size_t errlen);
/* The same, and when want is ATTNRT_F32 a '<f8' file (NumPy's default
 * float64) is read as f32, rounded to nearest even (a finite value that
 * would round to inf is an ATTNRT_E_RANGE error), and when want is
 * ATTNRT_I32 an '<i8' file (int64) as i32 (a value outside int32 is an
 * ATTNRT_E_RANGE error: "NAME[1, 3] = 5000000000 does not fit in i32", NAME
 * being name, or the path if name is NULL).  *converted (if not NULL) is
 * then "float64" or "int64", else NULL.  want = -1 converts nothing. */
attnrt_status attnrt_npy_read_as(const char *path, int want, const char *name, const char **converted,
                                 attnrt_tensor *t, char *err, size_t errlen);
/* Write a .npy file atomically: to a temporary file beside it, then rename. */
attnrt_status attnrt_npy_write(const char *path, const attnrt_tensor *t, char *err, size_t errlen);
void attnrt_tensor_free(attnrt_tensor *t);

/* A mapped safetensors file.  Every entry's dtype, shape and byte range are
 * checked when the file is opened. */
typedef struct attnrt_safetensors attnrt_safetensors;
attnrt_status attnrt_st_open(const char *path, attnrt_safetensors **out, char *err, size_t errlen);
void attnrt_st_close(attnrt_safetensors *st);
int attnrt_st_count(const attnrt_safetensors *st);
/* Entry i: its name and tensor (data points into the mapping).  Entries of
 * dtypes other than F32/I32 are listed with rank -1 and data NULL (the
 * loader converts F16/BF16/F64 ones; this reader gives the file as it is). */
const char *attnrt_st_name(const attnrt_safetensors *st, int i);
attnrt_status attnrt_st_get(const attnrt_safetensors *st, int i, attnrt_tensor *t);
int attnrt_st_find(const attnrt_safetensors *st, const char *name); /* -1 if absent */

/* ---- CPU dispatch (objects compiled with attnc --cpu A,B,...) ------------ */
/* Whether this machine runs code that uses the comma-separated LLVM x86
 * features in list ("avx2,fma,bmi2"): 1 if it has them all (cpuid, and the
 * OS's XCR0 for the AVX, AVX-512 and AMX register state); 0 if it lacks
 * some, which go into missing (comma-separated; may be NULL); -1 if a name
 * is not a feature this runtime can detect, which goes into missing. */
int attnrt_cpu_has(const char *list, char *missing, size_t len);
/* Which of an object's n CPU variants to run: names[i] as given to --cpu,
 * feats[i] its features, best first, the baseline last (which always
 * runs).  The first variant whose features this machine has.  For tests,
 * the environment variable ATTNRT_CPU=NAME picks variant NAME instead if
 * this machine has its features (otherwise a note on stderr, and the
 * usual choice), and ATTNRT_CPU_HIDE=f1,f2 makes the runtime take features
 * f1, f2 (LLVM's names) as absent.  Read once, on an object's first call. */
int32_t attnrt_cpu_pick(const char *const *names, const char *const *feats, int32_t n);

/* ---- called by generated code only ------------------------------------ */
/* Record an error on ctx and return status (for the body to return). */
int32_t attnrt_fail(struct attnrt_ctx *ctx, int32_t status, const char *msg);
/* Same, with a message and one integer detail ("... %lld ..."). */
int32_t attnrt_fail_i(struct attnrt_ctx *ctx, int32_t status, const char *fmt, int64_t v);
/* Same, and the first "%@" in fmt is the position [i, j, ...] of element
 * flat (row-major) of a tensor of shape dims[0..rank), rank <= 8. */
int32_t attnrt_fail_at(struct attnrt_ctx *ctx, int32_t status, const char *fmt, int64_t v, int64_t flat,
                       int32_t rank, const int64_t *dims);
/* The capacity set for input i (attnrt_ctx_set_capacity), 0 if none. */
int64_t attnrt_capacity(const struct attnrt_ctx *ctx, int64_t i);
/* Run fn over rows [0, n) split across the ctx's threads in chunks of at
 * least grain rows; returns when all are done. */
void attnrt_parallel_for(struct attnrt_ctx *ctx, attnrt_kernel_fn fn,
                          void *const *bufs, const int64_t *dims,
                          int64_t n, int64_t grain);

#ifdef __cplusplus
}
#endif
#endif
