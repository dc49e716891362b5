/* test_run: attnrt_bind_dims, attnrt_run's checks, output shapes, scratch
 * memory, bad descriptors, status strings and the generated code's error
 * entry points. */
#include "test_util.h"
#include "test_model.h"

static const float W[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
static const float BIAS[4] = {0.5f, -0.5f, 0.25f, 0};
static const int32_t SCALE = 2;

static attnrt_ctx *bound_ctx(const attnrt_model_desc *m) {
  attnrt_ctx *ctx = attnrt_ctx_new(m);
  attnrt_tensor w = {ATTNRT_F32, 2, {4, 3}, (void *)W};
  attnrt_tensor b = {ATTNRT_F32, 1, {4}, (void *)BIAS};
  attnrt_tensor s = {ATTNRT_I32, 0, {0}, (void *)&SCALE};
  if (attnrt_ctx_bind_param(ctx, "linear1.weight", &w) != ATTNRT_OK ||
      attnrt_ctx_bind_param(ctx, "linear1.bias", &b) != ATTNRT_OK ||
      attnrt_ctx_bind_param(ctx, "scale", &s) != ATTNRT_OK) {
    printf("cannot bind: %s\n", attnrt_ctx_error(ctx));
    exit(2);
  }
  return ctx;
}

static attnrt_tensor f32(int rank, int64_t d0, int64_t d1) {
  return (attnrt_tensor){ATTNRT_F32, rank, {d0, d1}, NULL};
}

static int32_t noop_body(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                         const int64_t *d, void *s, void *pr) {
  return ATTNRT_OK;
}

static void test_bind_dims(void) {
  attnrt_ctx *ctx = bound_ctx(&m_model);
  int64_t dims[2] = {-7, -7};
  attnrt_tensor in[3] = {f32(2, 5, 3), f32(2, 7, 3), f32(2, 7, 3)};
  attnrt_status s = attnrt_bind_dims(ctx, in, dims);
  check(s == ATTNRT_OK && dims[0] == 5 && dims[1] == 7, "bind T = 5, S = 7 from the inputs");

  in[2] = f32(2, 5, 3);
  s = attnrt_bind_dims(ctx, in, dims);
  check_err("conflicting symbolic dim: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "input 'v': dim 0 (S) is 5 but input 'k' set S = 7");
  in[2] = f32(2, 7, 3);
  in[1] = f32(2, 7, 4);
  s = attnrt_bind_dims(ctx, in, dims);
  check_err("wrong fixed dim: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "input 'k': dim 1 is 4 but model 'm' expects 3 (shape [S, 3])");
  in[1] = f32(1, 21, 0);
  s = attnrt_bind_dims(ctx, in, dims);
  check_err("wrong rank: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "input 'k' has rank 1 [21] but model 'm' expects rank 2 [S, 3]");
  in[1] = f32(2, 7, 3);
  in[0].dtype = ATTNRT_I32;
  s = attnrt_bind_dims(ctx, in, dims);
  check_err("wrong dtype: exact message", s, ATTNRT_E_DTYPE, attnrt_ctx_error(ctx),
            "input 'q' is i32 but model 'm' expects f32");
  in[0] = f32(2, -1, 3);
  s = attnrt_bind_dims(ctx, in, dims);
  check_err("a negative symbolic dim: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "input 'q': dim 0 (T) is -1, out of range [0, 2147483647]");
  in[0] = f32(2, INT64_C(2147483648), 3);
  s = attnrt_bind_dims(ctx, in, dims);
  check(s == ATTNRT_E_SHAPE && strstr(attnrt_ctx_error(ctx), "is 2147483648, out of range") != NULL,
        "a symbolic dim of 2^31 is out of range");
  in[0] = f32(7, 1, 3);
  s = attnrt_bind_dims(ctx, in, dims);
  check(s == ATTNRT_E_SHAPE, "a rank of 7 is ATTNRT_E_SHAPE");
  in[0] = f32(2, 5, 3);
  check(attnrt_bind_dims(ctx, NULL, dims) == ATTNRT_E_ARG && attnrt_bind_dims(ctx, in, NULL) == ATTNRT_E_ARG &&
            attnrt_bind_dims(NULL, in, dims) == ATTNRT_E_ARG,
        "NULL inputs, dims or ctx is ATTNRT_E_ARG");
  s = attnrt_bind_dims(ctx, in, dims);
  check(s == ATTNRT_OK && attnrt_ctx_error(ctx)[0] == '\0', "a good bind clears the last error");
  attnrt_ctx_free(ctx);

  /* One input using a dim twice, and a dim no input sets. */
  static const char *const names[] = {"T", "U"};
  static const attnrt_tensor_desc sq_in[] = {{"x", ATTNRT_F32, 2, {-1, -1}}};
  static const attnrt_tensor_desc sq_out[] = {{"y", ATTNRT_F32, 1, {-2}}};
  attnrt_model_desc sq = {ATTNRT_ABI_VERSION, "sq", 0, 1, 1, 2, NULL, sq_in, sq_out, names,
                        noop_body, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
  ctx = attnrt_ctx_new(&sq);
  attnrt_tensor x = f32(2, 3, 4);
  s = attnrt_bind_dims(ctx, &x, dims);
  check_err("a dim used twice by one input: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "input 'x': dim 1 (T) is 4 but dim 0 set T = 3");
  x = f32(2, 3, 3);
  s = attnrt_bind_dims(ctx, &x, dims);
  check_err("a dim no input sets: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "symbolic dim U of model 'sq' is not set by the shape of any input");
  attnrt_ctx_free(ctx);
}

static void test_run_checks(void) {
  attnrt_ctx *ctx = bound_ctx(&m_model);
  float q[15] = {0}, k[21] = {0}, v[21] = {0}, o[20];
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  check(attnrt_run(ctx, in, out, dims) == ATTNRT_OK, "run with good arguments");
  check(attnrt_run(NULL, in, out, dims) == ATTNRT_E_ARG, "NULL ctx is ATTNRT_E_ARG");
  attnrt_status s = attnrt_run(ctx, NULL, out, dims);
  check_err("NULL inputs: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "inputs is NULL but model 'm' has 3 inputs");
  in[1] = NULL;
  s = attnrt_run(ctx, in, out, dims);
  check_err("NULL input pointer: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx), "input 'k' is NULL");
  in[1] = k;
  out[0] = NULL;
  s = attnrt_run(ctx, in, out, dims);
  check_err("NULL output pointer: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx), "output 'o' is NULL");
  out[0] = o;
  s = attnrt_run(ctx, in, NULL, dims);
  check_err("NULL outputs: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "outputs is NULL but model 'm' has 1 outputs");
  s = attnrt_run(ctx, in, out, NULL);
  check_err("NULL dims: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "dims is NULL but model 'm' has 2 symbolic dims");
  dims[0] = -1;
  s = attnrt_run(ctx, in, out, dims);
  check_err("dim -1: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "dim T = -1 is out of range [0, 2147483647]");
  dims[0] = 5;
  dims[1] = INT64_C(2147483648);
  s = attnrt_run(ctx, in, out, dims);
  check_err("dim 2^31: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "dim S = 2147483648 is out of range [0, 2147483647]");
  dims[1] = -3;
  s = attnrt_run(ctx, in, out, dims);
  check(s == ATTNRT_E_ARG, "a negative dim is ATTNRT_E_ARG");
  dims[1] = 7;
  s = attnrt_run(ctx, in, out, dims);
  check(s == ATTNRT_OK && attnrt_ctx_error(ctx)[0] == '\0', "a good run clears the last error");
  attnrt_ctx_free(ctx);

  /* Sizes that overflow: f32[T, T, T, T] with T = 2^31 - 1. */
  static const char *const names[] = {"T"};
  static const attnrt_tensor_desc big_in[] = {{"x", ATTNRT_F32, 4, {-1, -1, -1, -1}}};
  attnrt_model_desc big = {ATTNRT_ABI_VERSION, "big", 0, 1, 0, 1, NULL, big_in, NULL, names,
                         noop_body, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
  ctx = attnrt_ctx_new(&big);
  int64_t t = INT64_C(2147483647);
  void *bin[1] = {q};
  s = attnrt_run(ctx, bin, NULL, &t);
  check_err("a tensor size that overflows: exact message", s, ATTNRT_E_LIMIT, attnrt_ctx_error(ctx),
            "input 'x' of shape [T, T, T, T] = [2147483647, 2147483647, 2147483647, 2147483647] "
            "needs 2^62 bytes or more");
  t = 65536; /* 2^64 elements * 4 bytes: overflows */
  s = attnrt_run(ctx, bin, NULL, &t);
  check(s == ATTNRT_E_LIMIT, "2^66 bytes is ATTNRT_E_LIMIT");
  t = 32768; /* 2^60 elements * 4 = 2^62 bytes: just over the limit */
  s = attnrt_run(ctx, bin, NULL, &t);
  check(s == ATTNRT_E_LIMIT, "exactly 2^62 bytes is ATTNRT_E_LIMIT");
  attnrt_ctx_free(ctx);
}

static int32_t fail_body(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                         const int64_t *d, void *s, void *pr) {
  return attnrt_fail_i(ctx, ATTNRT_E_RANGE, "input 'ids': id %lld is out of range [0, 5000)", 7777);
}

static int32_t silent_body(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                           const int64_t *d, void *s, void *pr) {
  return ATTNRT_E_RANGE;
}

static int64_t overflow_scratch(const int64_t *dims) {
  return -1;
}

static void test_body_status(void) {
  float q[15] = {0}, k[21] = {0}, v[21] = {0}, o[20];
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  attnrt_model_desc m = m_model;
  m.body = fail_body;
  attnrt_ctx *ctx = bound_ctx(&m);
  attnrt_status s = attnrt_run(ctx, in, out, dims);
  check_err("body's attnrt_fail_i message and status", s, ATTNRT_E_RANGE, attnrt_ctx_error(ctx),
            "input 'ids': id 7777 is out of range [0, 5000)");
  attnrt_ctx_free(ctx);
  m.body = silent_body;
  ctx = bound_ctx(&m);
  s = attnrt_run(ctx, in, out, dims);
  check_err("a body failing without a message gets one", s, ATTNRT_E_RANGE, attnrt_ctx_error(ctx),
            "model 'm' failed: out of range");
  attnrt_ctx_free(ctx);
  m = m_model;
  m.scratch_size = overflow_scratch;
  ctx = bound_ctx(&m);
  s = attnrt_run(ctx, in, out, dims);
  check_err("scratch size that overflows: exact message", s, ATTNRT_E_LIMIT, attnrt_ctx_error(ctx),
            "scratch memory for these dims overflows (-1 bytes)");
  check(attnrt_scratch_size(&m, dims) == -1, "attnrt_scratch_size says -1 too");
  attnrt_ctx_free(ctx);
}

static void test_scratch(void) {
  attnrt_ctx *ctx = bound_ctx(&m_model);
  static float q[64 * 3], k[64 * 3], v[64 * 3], o[64 * 4];
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  check(attnrt_scratch_size(&m_model, dims) == 140, "attnrt_scratch_size(T=5, S=7) = 140");
  check(attnrt_scratch_size(&m_model, NULL) == -1 && attnrt_scratch_size(NULL, dims) == -1,
        "attnrt_scratch_size of NULL is -1");
  int64_t bad[2] = {-1, 7};
  check(attnrt_scratch_size(&m_model, bad) == -1, "attnrt_scratch_size of a bad dim is -1");

  attnrt_run(ctx, in, out, dims);
  void *first = m_last_scratch;
  check(first != NULL && (uintptr_t)first % 64 == 0, "runtime scratch is 64-byte aligned");
  dims[0] = 2;
  attnrt_run(ctx, in, out, dims);
  check(m_last_scratch == first, "smaller dims reuse the scratch buffer");
  dims[0] = 64;
  dims[1] = 64;
  attnrt_status s = attnrt_run(ctx, in, out, dims);
  check(s == ATTNRT_OK && m_last_scratch != first && (uintptr_t)m_last_scratch % 64 == 0,
        "larger dims grow the scratch buffer (ASan checks its size)");

  _Alignas(64) static unsigned char mine[256];
  check(attnrt_ctx_set_scratch(ctx, mine + 8, 200) == ATTNRT_E_ARG, "a misaligned caller buffer is refused");
  check(attnrt_ctx_set_scratch(ctx, mine, 100) == ATTNRT_OK, "set a caller buffer of 100 bytes");
  dims[0] = 5;
  dims[1] = 7;
  s = attnrt_run(ctx, in, out, dims);
  check_err("caller buffer too small: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "scratch buffer of 100 bytes is too small: these dims need 140 bytes");
  dims[1] = 5;
  s = attnrt_run(ctx, in, out, dims);
  check(s == ATTNRT_OK && m_last_scratch == mine, "a big enough caller buffer is used");
  attnrt_ctx_set_scratch(ctx, NULL, 0);
  dims[1] = 7;
  s = attnrt_run(ctx, in, out, dims);
  check(s == ATTNRT_OK && m_last_scratch != mine, "NULL hands scratch back to the runtime");
  attnrt_ctx_free(ctx);
}

static void test_output_shape(void) {
  int64_t dims[2] = {9, 2};
  attnrt_tensor t;
  memset(&t, 0x11, sizeof t);
  attnrt_status s = attnrt_output_shape(&m_model, 0, dims, &t);
  check(s == ATTNRT_OK && t.dtype == ATTNRT_F32 && t.rank == 2 && t.dims[0] == 9 && t.dims[1] == 4 &&
            t.data == NULL,
        "output 'o' for T = 9 is f32[9, 4] with no data");
  check(attnrt_output_shape(&m_model, 1, dims, &t) == ATTNRT_E_RANGE &&
            attnrt_output_shape(&m_model, -1, dims, &t) == ATTNRT_E_RANGE,
        "output index out of range is ATTNRT_E_RANGE");
  check(attnrt_output_shape(&m_model, 0, NULL, &t) == ATTNRT_E_ARG &&
            attnrt_output_shape(NULL, 0, dims, &t) == ATTNRT_E_ARG &&
            attnrt_output_shape(&m_model, 0, dims, NULL) == ATTNRT_E_ARG,
        "NULL arguments are ATTNRT_E_ARG");
  dims[0] = -1;
  check(attnrt_output_shape(&m_model, 0, dims, &t) == ATTNRT_E_ARG, "a bad dim is ATTNRT_E_ARG");
}

static void test_bad_models(void) {
  attnrt_ctx *ctx = attnrt_ctx_new(NULL);
  float x[4];
  void *io[3] = {x, x, x};
  int64_t dims[2] = {1, 1};
  check(ctx != NULL && attnrt_run(ctx, io, io, dims) == ATTNRT_E_ARG &&
            strcmp(attnrt_ctx_error(ctx), "model descriptor is NULL") == 0,
        "a ctx for a NULL model fails every run, saying why");
  attnrt_ctx_free(ctx);

  attnrt_model_desc m = m_model;
  m.abi_version = ATTNRT_ABI_VERSION + 1;
  ctx = attnrt_ctx_new(&m);
  attnrt_status s = attnrt_run(ctx, io, io, dims);
  check_err("ABI mismatch: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "model descriptor has ABI version 4 but this runtime has 3 "
            "(recompile the model with a matching attnc)");
  check(attnrt_ctx_load_weights(ctx, "x") == ATTNRT_E_ARG && strstr(attnrt_ctx_error(ctx), "ABI") != NULL,
        "load_weights on a bad model says why too");
  attnrt_ctx_free(ctx);

  struct { const char *label; attnrt_model_desc m; const char *frag; } cases[] = {
    {"no body", m_model, "no body"},
    {"negative n_inputs", m_model, "inputs = -1"},
    {"inputs array missing", m_model, "3 inputs but no array"},
    {"symbolic dim out of range", m_model, "refers to symbolic dim 2 of 2"},
    {"rank 5 descriptor", m_model, "has rank 5"},
  };
  static const attnrt_tensor_desc bad_dim[] = {{"q", ATTNRT_F32, 2, {-3, 3}}, {"k", 0, 0, {0}}, {"v", 0, 0, {0}}};
  static const attnrt_tensor_desc bad_rank[] = {{"o", ATTNRT_F32, 5, {1, 1, 1, 1}}};
  cases[0].m.body = NULL;
  cases[1].m.n_inputs = -1;
  cases[2].m.inputs = NULL;
  cases[3].m.inputs = bad_dim;
  cases[4].m.outputs = bad_rank;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ctx = attnrt_ctx_new(&cases[i].m);
    s = attnrt_run(ctx, io, io, dims);
    check_err_has(cases[i].label, s, ATTNRT_E_ARG, attnrt_ctx_error(ctx), cases[i].frag, NULL);
    attnrt_ctx_free(ctx);
  }
  check(attnrt_ctx_model(NULL) == NULL && attnrt_ctx_threads(NULL) == 0 &&
            strcmp(attnrt_ctx_warnings(NULL), "") == 0 && attnrt_ctx_error(NULL)[0] != '\0',
        "queries on a NULL ctx are safe");
  attnrt_ctx_free(NULL);
}

static void test_status_and_fail(void) {
  const char *seen[10];
  bool distinct = true;
  for (int i = 0; i <= ATTNRT_E_LIMIT; i++) {
    seen[i] = attnrt_status_str((attnrt_status)i);
    for (int j = 0; j < i; j++)
      distinct = distinct && strcmp(seen[i], seen[j]) != 0;
    distinct = distinct && seen[i][0] != '\0' && strcmp(seen[i], "unknown status") != 0;
  }
  check(distinct && strcmp(attnrt_status_str(ATTNRT_OK), "ok") == 0 &&
            strcmp(attnrt_status_str(ATTNRT_E_SHAPE), "shape mismatch") == 0,
        "every status has its own string");
  check(strcmp(attnrt_status_str((attnrt_status)99), "unknown status") == 0, "an unknown status says so");

  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  check(attnrt_fail(ctx, ATTNRT_E_SHAPE, "boom") == ATTNRT_E_SHAPE && strcmp(attnrt_ctx_error(ctx), "boom") == 0,
        "attnrt_fail records the message and returns the status");
  attnrt_fail(ctx, ATTNRT_E_NOMEM, NULL);
  check(strcmp(attnrt_ctx_error(ctx), "out of memory") == 0, "attnrt_fail with no message uses the status");
  attnrt_fail_i(ctx, ATTNRT_E_RANGE, "100%% sure: %lld < 0", -5);
  check(strcmp(attnrt_ctx_error(ctx), "100% sure: -5 < 0") == 0, "attnrt_fail_i: %% and %lld");
  attnrt_fail_i(ctx, ATTNRT_E_RANGE, "%s and %d then %lld", INT64_MIN);
  check(strcmp(attnrt_ctx_error(ctx), "%s and -9223372036854775808 then %lld") == 0,
        "attnrt_fail_i: only the first int conversion is expanded, others are literal");
  attnrt_fail_i(ctx, ATTNRT_E_RANGE, "trailing %", 1);
  check(strcmp(attnrt_ctx_error(ctx), "trailing %") == 0, "attnrt_fail_i: a lone % at the end");
  char longfmt[3000];
  memset(longfmt, 'x', sizeof longfmt);
  memcpy(longfmt + 1015, "%lld", 4);
  longfmt[sizeof longfmt - 1] = '\0';
  attnrt_fail_i(ctx, ATTNRT_E_RANGE, longfmt, 123456789);
  check(strlen(attnrt_ctx_error(ctx)) == 1023 && strncmp(attnrt_ctx_error(ctx) + 1015, "12345678", 8) == 0,
        "attnrt_fail_i truncates a long message");
  const int64_t shape23[2] = {2, 3}, shape1[1] = {4};
  check(attnrt_fail_at(ctx, ATTNRT_E_RANGE, "input 'ids': ids%@ = %lld is out of range [0, 50)", 50, 5, 2, shape23) ==
                ATTNRT_E_RANGE &&
            strcmp(attnrt_ctx_error(ctx), "input 'ids': ids[1, 2] = 50 is out of range [0, 50)") == 0,
        "attnrt_fail_at: the row-major position of element 5 of [2, 3] is [1, 2]");
  attnrt_fail_at(ctx, ATTNRT_E_RANGE, "ids%@ = %lld", -1, 3, 1, shape1);
  check(strcmp(attnrt_ctx_error(ctx), "ids[3] = -1") == 0, "attnrt_fail_at: rank 1");
  attnrt_fail_at(ctx, ATTNRT_E_RANGE, "id%@ = %lld", 7, 0, 0, NULL);
  check(strcmp(attnrt_ctx_error(ctx), "id = 7") == 0, "attnrt_fail_at: rank 0 has no position");
  attnrt_fail_at(ctx, ATTNRT_E_RANGE, "no position: %lld", 7, 0, 1, shape1);
  check(strcmp(attnrt_ctx_error(ctx), "no position: 7") == 0, "attnrt_fail_at: without %@ it is attnrt_fail_i");
  check(attnrt_fail(NULL, ATTNRT_E_ARG, "x") == ATTNRT_E_ARG && attnrt_fail_i(NULL, ATTNRT_E_IO, "%lld", 1) == ATTNRT_E_IO &&
            attnrt_fail_at(NULL, ATTNRT_E_IO, "%lld", 1, 0, 0, NULL) == ATTNRT_E_IO,
        "attnrt_fail(_i) on a NULL ctx still return the status");

  check(attnrt_ctx_threads(ctx) == 1, "default thread count is 1");
  check(attnrt_ctx_set_threads(ctx, -1) == ATTNRT_E_ARG && attnrt_ctx_set_threads(ctx, 100000) == ATTNRT_E_ARG,
        "negative or absurd thread counts are refused");
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  check(attnrt_ctx_set_threads(ctx, 0) == ATTNRT_OK && attnrt_ctx_threads(ctx) == (cpus < 1 ? 1 : cpus),
        "0 threads means the online CPUs (%ld)", cpus);
  check(attnrt_ctx_set_threads(ctx, 3) == ATTNRT_OK && attnrt_ctx_threads(ctx) == 3, "set 3 threads");
  attnrt_ctx_free(ctx);
}

/* An output sharing bytes with an input or another output is refused
 * (docs/c-api.md); inputs may share buffers with each other. */
static void test_aliasing(void) {
  attnrt_ctx *ctx = bound_ctx(&m_model);
  float buf[64] = {0}, k[21] = {0}, v[21] = {0};
  float *q = buf, *o = buf + 15; /* q is 15 floats (T = 5): o starts right after it */
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  check(attnrt_run(ctx, in, out, dims) == ATTNRT_OK, "an output right after an input is not an overlap");
  out[0] = v;
  attnrt_status s = attnrt_run(ctx, in, out, dims);
  check_err("output on an input: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "output 'o' overlaps input 'v' in memory; an output may not share its buffer with an "
            "input or another output");
  out[0] = buf + 14; /* its first element is q's last */
  s = attnrt_run(ctx, in, out, dims);
  check_err("output overlapping an input by one element", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "output 'o' overlaps input 'q' in memory; an output may not share its buffer with an "
            "input or another output");
  out[0] = o;
  in[2] = k; /* k and v the same buffer: inputs are only read */
  check(attnrt_run(ctx, in, out, dims) == ATTNRT_OK && attnrt_ctx_error(ctx)[0] == '\0',
        "two inputs may share a buffer, and a good run clears the error");
  attnrt_ctx_free(ctx);

  static const char *const names[] = {"T"};
  static const attnrt_tensor_desc two_in[] = {{"x", ATTNRT_F32, 1, {-1}}};
  static const attnrt_tensor_desc two_out[] = {{"a", ATTNRT_F32, 1, {-1}}, {"b", ATTNRT_F32, 2, {-1, 2}}};
  attnrt_model_desc two = {ATTNRT_ABI_VERSION, "two", 0, 1, 2, 1, NULL, two_in, two_out, names,
                         noop_body, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
  ctx = attnrt_ctx_new(&two);
  float x[4], big[16];
  int64_t t = 4;
  void *tin[1] = {x};
  void *tout[2] = {big, big + 4};
  check(attnrt_run(ctx, tin, tout, &t) == ATTNRT_OK, "two outputs side by side");
  tout[1] = big + 3;
  s = attnrt_run(ctx, tin, tout, &t);
  check_err("two outputs overlapping: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "output 'b' overlaps output 'a' in memory; an output may not share its buffer with an "
            "input or another output");
  attnrt_ctx_free(ctx);
}

/* Every call that takes a ctx starts by clearing its last error. */
static void test_error_cleared(void) {
  attnrt_ctx *ctx = bound_ctx(&m_model);
  check(attnrt_ctx_set_threads(ctx, -1) == ATTNRT_E_ARG && attnrt_ctx_error(ctx)[0] != '\0', "bad thread count");
  check(attnrt_ctx_set_threads(ctx, 1) == ATTNRT_OK && attnrt_ctx_error(ctx)[0] == '\0',
        "set_threads after a failure clears the error");
  check(attnrt_ctx_set_scratch(ctx, (void *)(uintptr_t)8, 64) == ATTNRT_E_ARG && attnrt_ctx_error(ctx)[0] != '\0',
        "misaligned scratch");
  check(attnrt_ctx_set_scratch(ctx, NULL, 0) == ATTNRT_OK && attnrt_ctx_error(ctx)[0] == '\0',
        "set_scratch after a failure clears the error");
  attnrt_ctx_free(ctx);
}

int main(void) {
  test_aliasing();
  test_error_cleared();
  test_bind_dims();
  test_run_checks();
  test_body_status();
  test_scratch();
  test_output_shape();
  test_bad_models();
  test_status_and_fail();
  return test_finish("test_run");
}
