/* test_run: attn_bind_dims, attn_run's checks, output shapes, scratch
 * memory, bad descriptors, status strings and the generated code's error
 * entry points. */
#include "test_util.h"
#include "test_model.h"

static const float W[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
static const float BIAS[4] = {0.5f, -0.5f, 0.25f, 0};
static const int32_t SCALE = 2;

static attn_ctx *bound_ctx(const attn_model_desc *m) {
  attn_ctx *ctx = attn_ctx_new(m);
  attn_tensor w = {ATTN_F32, 2, {4, 3}, (void *)W};
  attn_tensor b = {ATTN_F32, 1, {4}, (void *)BIAS};
  attn_tensor s = {ATTN_I32, 0, {0}, (void *)&SCALE};
  if (attn_ctx_bind_param(ctx, "linear1.weight", &w) != ATTN_OK ||
      attn_ctx_bind_param(ctx, "linear1.bias", &b) != ATTN_OK ||
      attn_ctx_bind_param(ctx, "scale", &s) != ATTN_OK) {
    printf("cannot bind: %s\n", attn_ctx_error(ctx));
    exit(2);
  }
  return ctx;
}

static attn_tensor f32(int rank, int64_t d0, int64_t d1) {
  return (attn_tensor){ATTN_F32, rank, {d0, d1}, NULL};
}

static int32_t noop_body(struct attn_ctx *ctx, void *const *p, void *const *i, void *const *o,
                         const int64_t *d, void *s) {
  return ATTN_OK;
}

static void test_bind_dims(void) {
  attn_ctx *ctx = bound_ctx(&m_model);
  int64_t dims[2] = {-7, -7};
  attn_tensor in[3] = {f32(2, 5, 3), f32(2, 7, 3), f32(2, 7, 3)};
  attn_status s = attn_bind_dims(ctx, in, dims);
  check(s == ATTN_OK && dims[0] == 5 && dims[1] == 7, "bind T = 5, S = 7 from the inputs");

  in[2] = f32(2, 5, 3);
  s = attn_bind_dims(ctx, in, dims);
  check_err("conflicting symbolic dim: exact message", s, ATTN_E_SHAPE, attn_ctx_error(ctx),
            "input 'v': dim 0 (S) is 5 but input 'k' set S = 7");
  in[2] = f32(2, 7, 3);
  in[1] = f32(2, 7, 4);
  s = attn_bind_dims(ctx, in, dims);
  check_err("wrong fixed dim: exact message", s, ATTN_E_SHAPE, attn_ctx_error(ctx),
            "input 'k': dim 1 is 4 but model 'm' expects 3 (shape [S, 3])");
  in[1] = f32(1, 21, 0);
  s = attn_bind_dims(ctx, in, dims);
  check_err("wrong rank: exact message", s, ATTN_E_SHAPE, attn_ctx_error(ctx),
            "input 'k' has rank 1 [21] but model 'm' expects rank 2 [S, 3]");
  in[1] = f32(2, 7, 3);
  in[0].dtype = ATTN_I32;
  s = attn_bind_dims(ctx, in, dims);
  check_err("wrong dtype: exact message", s, ATTN_E_DTYPE, attn_ctx_error(ctx),
            "input 'q' is i32 but model 'm' expects f32");
  in[0] = f32(2, 0, 3);
  s = attn_bind_dims(ctx, in, dims);
  check_err("a zero symbolic dim: exact message", s, ATTN_E_SHAPE, attn_ctx_error(ctx),
            "input 'q': dim 0 (T) is 0, out of range [1, 2147483647]");
  in[0] = f32(2, INT64_C(2147483648), 3);
  s = attn_bind_dims(ctx, in, dims);
  check(s == ATTN_E_SHAPE && strstr(attn_ctx_error(ctx), "is 2147483648, out of range") != NULL,
        "a symbolic dim of 2^31 is out of range");
  in[0] = f32(7, 1, 3);
  s = attn_bind_dims(ctx, in, dims);
  check(s == ATTN_E_SHAPE, "a rank of 7 is ATTN_E_SHAPE");
  in[0] = f32(2, 5, 3);
  check(attn_bind_dims(ctx, NULL, dims) == ATTN_E_ARG && attn_bind_dims(ctx, in, NULL) == ATTN_E_ARG &&
            attn_bind_dims(NULL, in, dims) == ATTN_E_ARG,
        "NULL inputs, dims or ctx is ATTN_E_ARG");
  s = attn_bind_dims(ctx, in, dims);
  check(s == ATTN_OK && attn_ctx_error(ctx)[0] == '\0', "a good bind clears the last error");
  attn_ctx_free(ctx);

  /* One input using a dim twice, and a dim no input sets. */
  static const char *const names[] = {"T", "U"};
  static const attn_tensor_desc sq_in[] = {{"x", ATTN_F32, 2, {-1, -1}}};
  static const attn_tensor_desc sq_out[] = {{"y", ATTN_F32, 1, {-2}}};
  attn_model_desc sq = {ATTN_ABI_VERSION, "sq", 0, 1, 1, 2, NULL, sq_in, sq_out, names,
                        noop_body, NULL, NULL, 0};
  ctx = attn_ctx_new(&sq);
  attn_tensor x = f32(2, 3, 4);
  s = attn_bind_dims(ctx, &x, dims);
  check_err("a dim used twice by one input: exact message", s, ATTN_E_SHAPE, attn_ctx_error(ctx),
            "input 'x': dim 1 (T) is 4 but dim 0 set T = 3");
  x = f32(2, 3, 3);
  s = attn_bind_dims(ctx, &x, dims);
  check_err("a dim no input sets: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "symbolic dim U of model 'sq' is not set by the shape of any input");
  attn_ctx_free(ctx);
}

static void test_run_checks(void) {
  attn_ctx *ctx = bound_ctx(&m_model);
  float q[15] = {0}, k[21] = {0}, v[21] = {0}, o[20];
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  check(attn_run(ctx, in, out, dims) == ATTN_OK, "run with good arguments");
  check(attn_run(NULL, in, out, dims) == ATTN_E_ARG, "NULL ctx is ATTN_E_ARG");
  attn_status s = attn_run(ctx, NULL, out, dims);
  check_err("NULL inputs: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "inputs is NULL but model 'm' has 3 inputs");
  in[1] = NULL;
  s = attn_run(ctx, in, out, dims);
  check_err("NULL input pointer: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx), "input 'k' is NULL");
  in[1] = k;
  out[0] = NULL;
  s = attn_run(ctx, in, out, dims);
  check_err("NULL output pointer: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx), "output 'o' is NULL");
  out[0] = o;
  s = attn_run(ctx, in, NULL, dims);
  check_err("NULL outputs: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "outputs is NULL but model 'm' has 1 outputs");
  s = attn_run(ctx, in, out, NULL);
  check_err("NULL dims: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "dims is NULL but model 'm' has 2 symbolic dims");
  dims[0] = 0;
  s = attn_run(ctx, in, out, dims);
  check_err("dim 0: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "dim T = 0 is out of range [1, 2147483647]");
  dims[0] = 5;
  dims[1] = INT64_C(2147483648);
  s = attn_run(ctx, in, out, dims);
  check_err("dim 2^31: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "dim S = 2147483648 is out of range [1, 2147483647]");
  dims[1] = -3;
  s = attn_run(ctx, in, out, dims);
  check(s == ATTN_E_ARG, "a negative dim is ATTN_E_ARG");
  dims[1] = 7;
  s = attn_run(ctx, in, out, dims);
  check(s == ATTN_OK && attn_ctx_error(ctx)[0] == '\0', "a good run clears the last error");
  attn_ctx_free(ctx);

  /* Sizes that overflow: f32[T, T, T, T] with T = 2^31 - 1. */
  static const char *const names[] = {"T"};
  static const attn_tensor_desc big_in[] = {{"x", ATTN_F32, 4, {-1, -1, -1, -1}}};
  attn_model_desc big = {ATTN_ABI_VERSION, "big", 0, 1, 0, 1, NULL, big_in, NULL, names,
                         noop_body, NULL, NULL, 0};
  ctx = attn_ctx_new(&big);
  int64_t t = INT64_C(2147483647);
  void *bin[1] = {q};
  s = attn_run(ctx, bin, NULL, &t);
  check_err("a tensor size that overflows: exact message", s, ATTN_E_LIMIT, attn_ctx_error(ctx),
            "input 'x' of shape [T, T, T, T] = [2147483647, 2147483647, 2147483647, 2147483647] "
            "needs 2^62 bytes or more");
  t = 65536; /* 2^64 elements * 4 bytes: overflows */
  s = attn_run(ctx, bin, NULL, &t);
  check(s == ATTN_E_LIMIT, "2^66 bytes is ATTN_E_LIMIT");
  t = 32768; /* 2^60 elements * 4 = 2^62 bytes: just over the limit */
  s = attn_run(ctx, bin, NULL, &t);
  check(s == ATTN_E_LIMIT, "exactly 2^62 bytes is ATTN_E_LIMIT");
  attn_ctx_free(ctx);
}

static int32_t fail_body(struct attn_ctx *ctx, void *const *p, void *const *i, void *const *o,
                         const int64_t *d, void *s) {
  return attn_rt_fail_i(ctx, ATTN_E_RANGE, "input 'ids': id %lld is out of range [0, 5000)", 7777);
}

static int32_t silent_body(struct attn_ctx *ctx, void *const *p, void *const *i, void *const *o,
                           const int64_t *d, void *s) {
  return ATTN_E_RANGE;
}

static int64_t overflow_scratch(const int64_t *dims) {
  return -1;
}

static void test_body_status(void) {
  float q[15] = {0}, k[21] = {0}, v[21] = {0}, o[20];
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  attn_model_desc m = m_model;
  m.body = fail_body;
  attn_ctx *ctx = bound_ctx(&m);
  attn_status s = attn_run(ctx, in, out, dims);
  check_err("body's attn_rt_fail_i message and status", s, ATTN_E_RANGE, attn_ctx_error(ctx),
            "input 'ids': id 7777 is out of range [0, 5000)");
  attn_ctx_free(ctx);
  m.body = silent_body;
  ctx = bound_ctx(&m);
  s = attn_run(ctx, in, out, dims);
  check_err("a body failing without a message gets one", s, ATTN_E_RANGE, attn_ctx_error(ctx),
            "model 'm' failed: out of range");
  attn_ctx_free(ctx);
  m = m_model;
  m.scratch_size = overflow_scratch;
  ctx = bound_ctx(&m);
  s = attn_run(ctx, in, out, dims);
  check_err("scratch size that overflows: exact message", s, ATTN_E_LIMIT, attn_ctx_error(ctx),
            "scratch memory for these dims overflows (-1 bytes)");
  check(attn_scratch_size(&m, dims) == -1, "attn_scratch_size says -1 too");
  attn_ctx_free(ctx);
}

static void test_scratch(void) {
  attn_ctx *ctx = bound_ctx(&m_model);
  static float q[64 * 3], k[64 * 3], v[64 * 3], o[64 * 4];
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  check(attn_scratch_size(&m_model, dims) == 140, "attn_scratch_size(T=5, S=7) = 140");
  check(attn_scratch_size(&m_model, NULL) == -1 && attn_scratch_size(NULL, dims) == -1,
        "attn_scratch_size of NULL is -1");
  int64_t zero[2] = {0, 7};
  check(attn_scratch_size(&m_model, zero) == -1, "attn_scratch_size of a bad dim is -1");

  attn_run(ctx, in, out, dims);
  void *first = m_last_scratch;
  check(first != NULL && (uintptr_t)first % 64 == 0, "runtime scratch is 64-byte aligned");
  dims[0] = 2;
  attn_run(ctx, in, out, dims);
  check(m_last_scratch == first, "smaller dims reuse the scratch buffer");
  dims[0] = 64;
  dims[1] = 64;
  attn_status s = attn_run(ctx, in, out, dims);
  check(s == ATTN_OK && m_last_scratch != first && (uintptr_t)m_last_scratch % 64 == 0,
        "larger dims grow the scratch buffer (ASan checks its size)");

  _Alignas(64) static unsigned char mine[256];
  check(attn_ctx_set_scratch(ctx, mine + 8, 200) == ATTN_E_ARG, "a misaligned caller buffer is refused");
  check(attn_ctx_set_scratch(ctx, mine, 100) == ATTN_OK, "set a caller buffer of 100 bytes");
  dims[0] = 5;
  dims[1] = 7;
  s = attn_run(ctx, in, out, dims);
  check_err("caller buffer too small: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "scratch buffer of 100 bytes is too small: these dims need 140 bytes");
  dims[1] = 5;
  s = attn_run(ctx, in, out, dims);
  check(s == ATTN_OK && m_last_scratch == mine, "a big enough caller buffer is used");
  attn_ctx_set_scratch(ctx, NULL, 0);
  dims[1] = 7;
  s = attn_run(ctx, in, out, dims);
  check(s == ATTN_OK && m_last_scratch != mine, "NULL hands scratch back to the runtime");
  attn_ctx_free(ctx);
}

static void test_output_shape(void) {
  int64_t dims[2] = {9, 2};
  attn_tensor t;
  memset(&t, 0x11, sizeof t);
  attn_status s = attn_output_shape(&m_model, 0, dims, &t);
  check(s == ATTN_OK && t.dtype == ATTN_F32 && t.rank == 2 && t.dims[0] == 9 && t.dims[1] == 4 &&
            t.data == NULL,
        "output 'o' for T = 9 is f32[9, 4] with no data");
  check(attn_output_shape(&m_model, 1, dims, &t) == ATTN_E_RANGE &&
            attn_output_shape(&m_model, -1, dims, &t) == ATTN_E_RANGE,
        "output index out of range is ATTN_E_RANGE");
  check(attn_output_shape(&m_model, 0, NULL, &t) == ATTN_E_ARG &&
            attn_output_shape(NULL, 0, dims, &t) == ATTN_E_ARG &&
            attn_output_shape(&m_model, 0, dims, NULL) == ATTN_E_ARG,
        "NULL arguments are ATTN_E_ARG");
  dims[0] = 0;
  check(attn_output_shape(&m_model, 0, dims, &t) == ATTN_E_ARG, "a bad dim is ATTN_E_ARG");
}

static void test_bad_models(void) {
  attn_ctx *ctx = attn_ctx_new(NULL);
  float x[4];
  void *io[3] = {x, x, x};
  int64_t dims[2] = {1, 1};
  check(ctx != NULL && attn_run(ctx, io, io, dims) == ATTN_E_ARG &&
            strcmp(attn_ctx_error(ctx), "model descriptor is NULL") == 0,
        "a ctx for a NULL model fails every run, saying why");
  attn_ctx_free(ctx);

  attn_model_desc m = m_model;
  m.abi_version = 2;
  ctx = attn_ctx_new(&m);
  attn_status s = attn_run(ctx, io, io, dims);
  check_err("ABI mismatch: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "model descriptor has ABI version 2 but this runtime has 1 "
            "(recompile the model with a matching attnc)");
  check(attn_ctx_load_weights(ctx, "x") == ATTN_E_ARG && strstr(attn_ctx_error(ctx), "ABI") != NULL,
        "load_weights on a bad model says why too");
  attn_ctx_free(ctx);

  struct { const char *label; attn_model_desc m; const char *frag; } cases[] = {
    {"no body", m_model, "no body"},
    {"negative n_inputs", m_model, "inputs = -1"},
    {"inputs array missing", m_model, "3 inputs but no array"},
    {"symbolic dim out of range", m_model, "refers to symbolic dim 2 of 2"},
    {"rank 5 descriptor", m_model, "has rank 5"},
  };
  static const attn_tensor_desc bad_dim[] = {{"q", ATTN_F32, 2, {-3, 3}}, {"k", 0, 0, {0}}, {"v", 0, 0, {0}}};
  static const attn_tensor_desc bad_rank[] = {{"o", ATTN_F32, 5, {1, 1, 1, 1}}};
  cases[0].m.body = NULL;
  cases[1].m.n_inputs = -1;
  cases[2].m.inputs = NULL;
  cases[3].m.inputs = bad_dim;
  cases[4].m.outputs = bad_rank;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ctx = attn_ctx_new(&cases[i].m);
    s = attn_run(ctx, io, io, dims);
    check_err_has(cases[i].label, s, ATTN_E_ARG, attn_ctx_error(ctx), cases[i].frag, NULL);
    attn_ctx_free(ctx);
  }
  check(attn_ctx_model(NULL) == NULL && attn_ctx_threads(NULL) == 0 &&
            strcmp(attn_ctx_warnings(NULL), "") == 0 && attn_ctx_error(NULL)[0] != '\0',
        "queries on a NULL ctx are safe");
  attn_ctx_free(NULL);
}

static void test_status_and_fail(void) {
  const char *seen[10];
  bool distinct = true;
  for (int i = 0; i <= ATTN_E_LIMIT; i++) {
    seen[i] = attn_status_str((attn_status)i);
    for (int j = 0; j < i; j++)
      distinct = distinct && strcmp(seen[i], seen[j]) != 0;
    distinct = distinct && seen[i][0] != '\0' && strcmp(seen[i], "unknown status") != 0;
  }
  check(distinct && strcmp(attn_status_str(ATTN_OK), "ok") == 0 &&
            strcmp(attn_status_str(ATTN_E_SHAPE), "shape mismatch") == 0,
        "every status has its own string");
  check(strcmp(attn_status_str((attn_status)99), "unknown status") == 0, "an unknown status says so");

  attn_ctx *ctx = attn_ctx_new(&m_model);
  check(attn_rt_fail(ctx, ATTN_E_SHAPE, "boom") == ATTN_E_SHAPE && strcmp(attn_ctx_error(ctx), "boom") == 0,
        "attn_rt_fail records the message and returns the status");
  attn_rt_fail(ctx, ATTN_E_NOMEM, NULL);
  check(strcmp(attn_ctx_error(ctx), "out of memory") == 0, "attn_rt_fail with no message uses the status");
  attn_rt_fail_i(ctx, ATTN_E_RANGE, "100%% sure: %lld < 0", -5);
  check(strcmp(attn_ctx_error(ctx), "100% sure: -5 < 0") == 0, "attn_rt_fail_i: %% and %lld");
  attn_rt_fail_i(ctx, ATTN_E_RANGE, "%s and %d then %lld", INT64_MIN);
  check(strcmp(attn_ctx_error(ctx), "%s and -9223372036854775808 then %lld") == 0,
        "attn_rt_fail_i: only the first int conversion is expanded, others are literal");
  attn_rt_fail_i(ctx, ATTN_E_RANGE, "trailing %", 1);
  check(strcmp(attn_ctx_error(ctx), "trailing %") == 0, "attn_rt_fail_i: a lone % at the end");
  char longfmt[3000];
  memset(longfmt, 'x', sizeof longfmt);
  memcpy(longfmt + 1015, "%lld", 4);
  longfmt[sizeof longfmt - 1] = '\0';
  attn_rt_fail_i(ctx, ATTN_E_RANGE, longfmt, 123456789);
  check(strlen(attn_ctx_error(ctx)) == 1023 && strncmp(attn_ctx_error(ctx) + 1015, "12345678", 8) == 0,
        "attn_rt_fail_i truncates a long message");
  check(attn_rt_fail(NULL, ATTN_E_ARG, "x") == ATTN_E_ARG && attn_rt_fail_i(NULL, ATTN_E_IO, "%lld", 1) == ATTN_E_IO,
        "attn_rt_fail(_i) on a NULL ctx still return the status");

  check(attn_ctx_threads(ctx) == 1, "default thread count is 1");
  check(attn_ctx_set_threads(ctx, -1) == ATTN_E_ARG && attn_ctx_set_threads(ctx, 100000) == ATTN_E_ARG,
        "negative or absurd thread counts are refused");
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  check(attn_ctx_set_threads(ctx, 0) == ATTN_OK && attn_ctx_threads(ctx) == (cpus < 1 ? 1 : cpus),
        "0 threads means the online CPUs (%ld)", cpus);
  check(attn_ctx_set_threads(ctx, 3) == ATTN_OK && attn_ctx_threads(ctx) == 3, "set 3 threads");
  attn_ctx_free(ctx);
}

/* An output sharing bytes with an input or another output is refused
 * (docs/c-api.md); inputs may share buffers with each other. */
static void test_aliasing(void) {
  attn_ctx *ctx = bound_ctx(&m_model);
  float buf[64] = {0}, k[21] = {0}, v[21] = {0};
  float *q = buf, *o = buf + 15; /* q is 15 floats (T = 5): o starts right after it */
  void *in[3] = {q, k, v};
  void *out[1] = {o};
  int64_t dims[2] = {5, 7};
  check(attn_run(ctx, in, out, dims) == ATTN_OK, "an output right after an input is not an overlap");
  out[0] = v;
  attn_status s = attn_run(ctx, in, out, dims);
  check_err("output on an input: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "output 'o' overlaps input 'v' in memory; an output may not share its buffer with an "
            "input or another output");
  out[0] = buf + 14; /* its first element is q's last */
  s = attn_run(ctx, in, out, dims);
  check_err("output overlapping an input by one element", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "output 'o' overlaps input 'q' in memory; an output may not share its buffer with an "
            "input or another output");
  out[0] = o;
  in[2] = k; /* k and v the same buffer: inputs are only read */
  check(attn_run(ctx, in, out, dims) == ATTN_OK && attn_ctx_error(ctx)[0] == '\0',
        "two inputs may share a buffer, and a good run clears the error");
  attn_ctx_free(ctx);

  static const char *const names[] = {"T"};
  static const attn_tensor_desc two_in[] = {{"x", ATTN_F32, 1, {-1}}};
  static const attn_tensor_desc two_out[] = {{"a", ATTN_F32, 1, {-1}}, {"b", ATTN_F32, 2, {-1, 2}}};
  attn_model_desc two = {ATTN_ABI_VERSION, "two", 0, 1, 2, 1, NULL, two_in, two_out, names,
                         noop_body, NULL, NULL, 0};
  ctx = attn_ctx_new(&two);
  float x[4], big[16];
  int64_t t = 4;
  void *tin[1] = {x};
  void *tout[2] = {big, big + 4};
  check(attn_run(ctx, tin, tout, &t) == ATTN_OK, "two outputs side by side");
  tout[1] = big + 3;
  s = attn_run(ctx, tin, tout, &t);
  check_err("two outputs overlapping: exact message", s, ATTN_E_ARG, attn_ctx_error(ctx),
            "output 'b' overlaps output 'a' in memory; an output may not share its buffer with an "
            "input or another output");
  attn_ctx_free(ctx);
}

/* Every call that takes a ctx starts by clearing its last error. */
static void test_error_cleared(void) {
  attn_ctx *ctx = bound_ctx(&m_model);
  check(attn_ctx_set_threads(ctx, -1) == ATTN_E_ARG && attn_ctx_error(ctx)[0] != '\0', "bad thread count");
  check(attn_ctx_set_threads(ctx, 1) == ATTN_OK && attn_ctx_error(ctx)[0] == '\0',
        "set_threads after a failure clears the error");
  check(attn_ctx_set_scratch(ctx, (void *)(uintptr_t)8, 64) == ATTN_E_ARG && attn_ctx_error(ctx)[0] != '\0',
        "misaligned scratch");
  check(attn_ctx_set_scratch(ctx, NULL, 0) == ATTN_OK && attn_ctx_error(ctx)[0] == '\0',
        "set_scratch after a failure clears the error");
  attn_ctx_free(ctx);
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
