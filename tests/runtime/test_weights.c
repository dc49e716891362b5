/* test_weights: attnrt_ctx_load_weights(_prefix) and attnrt_ctx_bind_param,
 * with the exact messages for missing, mis-shaped, mis-typed and extra
 * tensors, prefixes, and the hint that suggests one (issue 19).  The
 * conversions of F16, BF16 and F64 tensors are test_convert's. */
#include "test_util.h"
#include "test_model.h"

#include <math.h>

static const float W1[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
static const float W2[12] = {2, 0, 0, 0, 2, 0, 0, 0, 2, -1, -1, -1};
static const float BIAS[4] = {0.5f, -0.5f, 0.25f, 0};
static const int32_t SCALE[1] = {3};

static const float *const Q = m_q, *const K = m_k, *const V = m_v;

static st_tensor weight(const float *w) {
  return (st_tensor){"linear1.weight", "F32", 2, {4, 3}, w, 48};
}
static st_tensor bias(void) {
  return (st_tensor){"linear1.bias", "F32", 1, {4}, BIAS, 16};
}
static st_tensor scale(void) {
  return (st_tensor){"scale", "I32", 0, {0}, SCALE, 4};
}

/* Runs m and compares with the reference for weights w. */
static bool run_matches(attnrt_ctx *ctx, const float *w) {
  return m_run_matches(ctx, w, BIAS, SCALE[0]);
}

static void test_good_load(void) {
  char want[1024];
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  const char *p = tpath("w.safetensors");
  float junk[2] = {0};
  st_tensor ts[] = {{"foo", "F32", 1, {2}, junk, 8}, weight(W1), bias(),
                    {"bar", "F16", 1, {2}, junk, 4}, scale()};
  write_st(p, ts, 5);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  check(s == ATTNRT_OK && strcmp(attnrt_ctx_error(ctx), "") == 0, "load a file with every parameter (%s)",
        attnrt_ctx_error(ctx));
  check(strcmp(attnrt_ctx_warnings(ctx),
               "ignoring tensor 'foo' (not a parameter of model m)\n"
               "ignoring tensor 'bar' (not a parameter of model m)") == 0,
        "extra tensors are warnings, in file order: exact text");
  check(run_matches(ctx, W1), "run uses the loaded weights");

  /* A second file replaces the first, and the warnings. */
  const char *p2 = tpath("w2.safetensors");
  st_tensor ts2[] = {scale(), bias(), weight(W2)};
  write_st(p2, ts2, 3);
  s = attnrt_ctx_load_weights(ctx, p2);
  check(s == ATTNRT_OK && strcmp(attnrt_ctx_warnings(ctx), "") == 0, "reload: no warnings left over");
  check(run_matches(ctx, W2), "run uses the reloaded weights");

  /* A bad file leaves the context as it was. */
  const char *p3 = tpath("w3.safetensors");
  st_tensor ts3[] = {weight(W1), scale()};
  write_st(p3, ts3, 2);
  s = attnrt_ctx_load_weights(ctx, p3);
  snprintf(want, sizeof want, "missing parameter 'linear1.bias' in %s", p3);
  check_err("missing parameter: exact message", s, ATTNRT_E_MISSING, attnrt_ctx_error(ctx), want);
  check(run_matches(ctx, W2), "after a failed load the previous weights are still bound");
  attnrt_ctx_free(ctx);
}

static void expect_load(const char *label, const st_tensor *ts, int n, attnrt_status want,
                        const char *fmt_with_path) {
  char want_msg[1024];
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  const char *p = tpath("bad.safetensors");
  write_st(p, ts, n);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want_msg, sizeof want_msg, fmt_with_path, p);
  check_err(label, s, want, attnrt_ctx_error(ctx), want_msg);
  void *in[3] = {(void *)Q, (void *)K, (void *)V};
  float o[8];
  void *out[1] = {o};
  int64_t dims[2] = {2, 3};
  s = attnrt_run(ctx, in, out, dims);
  check(s == ATTNRT_E_MISSING, "%s: nothing is bound after the failed load", label);
  attnrt_ctx_free(ctx);
}

static void test_bad_loads(void) {
  float w34[12] = {0};
  int32_t i12[12] = {0};
  uint16_t h4[4] = {0};
  st_tensor shape[] = {{"linear1.weight", "F32", 2, {3, 4}, w34, 48}, bias(), scale()};
  expect_load("mis-shaped parameter: exact message", shape, 3, ATTNRT_E_SHAPE,
              "parameter 'linear1.weight' in %s has shape [3, 4], but model 'm' expects [4, 3]");
  st_tensor rank[] = {weight(W1), bias(), {"scale", "I32", 1, {1}, SCALE, 4}};
  expect_load("rank-1 tensor for a scalar: exact message", rank, 3, ATTNRT_E_SHAPE,
              "parameter 'scale' in %s has shape [1], but model 'm' expects []");
  st_tensor type[] = {{"linear1.weight", "I32", 2, {4, 3}, i12, 48}, bias(), scale()};
  expect_load("mis-typed parameter: exact message", type, 3, ATTNRT_E_DTYPE,
              "parameter 'linear1.weight' in %s has dtype I32, but model 'm' expects F32");
  int64_t i64[4] = {0};
  st_tensor i64s[] = {weight(W1), {"linear1.bias", "I64", 1, {4}, i64, 32}, scale()};
  expect_load("I64 tensor bound to an f32 parameter: exact message", i64s, 3, ATTNRT_E_DTYPE,
              "parameter 'linear1.bias' in %s has dtype I64, but model 'm' expects F32");
  st_tensor bf16[] = {weight(W1), bias(), {"scale", "BF16", 0, {0}, h4, 2}};
  expect_load("BF16 tensor bound to an i32 parameter: exact message", bf16, 3, ATTNRT_E_DTYPE,
              "parameter 'scale' in %s has dtype BF16, but model 'm' expects I32");
  st_tensor none[] = {{"linear1.weights", "F32", 2, {4, 3}, W1, 48}};
  expect_load("missing parameter, near miss present: exact message", none, 1, ATTNRT_E_MISSING,
              "missing parameter 'linear1.weight' in %s");

  char want[1024];
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  const char *p = tpath("hostile.safetensors");
  write_st_raw(p, "{\"linear1.weight\": {\"dtype\": \"F32\", \"shape\": [4, 3], \"data_offsets\": [0, 480]}}",
               W1, sizeof W1);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want, sizeof want,
           "%s: tensor 'linear1.weight': data_offsets [0, 480] are outside the data region of 48 bytes", p);
  check_err("a lying file: the reader's message", s, ATTNRT_E_FORMAT, attnrt_ctx_error(ctx), want);
  s = attnrt_ctx_load_weights(ctx, tpath("absent.safetensors"));
  check_err_has("a missing file", s, ATTNRT_E_IO, attnrt_ctx_error(ctx), "cannot open", "absent", NULL);
  check(attnrt_ctx_load_weights(ctx, NULL) == ATTNRT_E_ARG, "NULL path is ATTNRT_E_ARG");
  check(attnrt_ctx_load_weights(NULL, p) == ATTNRT_E_ARG, "NULL ctx is ATTNRT_E_ARG");
  attnrt_ctx_free(ctx);
}

/* Tensor names come from the file: escapes, BEL and bidi overrides in them
 * reach messages as \xNN, never raw (a hostile file cannot drive the
 * terminal that shows a warning or an error); printable UTF-8 stays. */
static void test_escaped_names(void) {
  float x = 0;
  st_tensor ts[] = {{"\\u001b[31mred", "F32", 0, {0}, &x, 4},
                    {"bell\\u0007\xe2\x80\xae" "evil", "F32", 0, {0}, &x, 4},
                    {"caf\xc3\xa9", "F32", 0, {0}, &x, 4},
                    weight(W1), bias(), scale()};
  const char *p = tpath("escapes.safetensors");
  write_st(p, ts, 6);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  check(s == ATTNRT_OK &&
            strcmp(attnrt_ctx_warnings(ctx),
                   "ignoring tensor '\\x1b[31mred' (not a parameter of model m)\n"
                   "ignoring tensor 'bell\\x07\\xe2\\x80\\xaeevil' (not a parameter of model m)\n"
                   "ignoring tensor 'caf\xc3\xa9' (not a parameter of model m)") == 0,
        "control bytes and bidi overrides in names are escaped in warnings: exact text (%s)",
        attnrt_ctx_warnings(ctx));
  st_tensor bad[] = {{"linear1.weight", "F32", 2, {4, 3}, W1, 48}, bias(), scale(),
                     {"\\u001b]0;title\\u0007", "F32", 1, {3}, &x, 4}};
  const char *p2 = tpath("escapes2.safetensors");
  write_st(p2, bad, 4);
  s = attnrt_ctx_load_weights(ctx, p2);
  const char *e = attnrt_ctx_error(ctx);
  check(s == ATTNRT_E_FORMAT && strstr(e, "tensor '\\x1b]0;title\\x07'") != NULL && strchr(e, 0x1b) == NULL,
        "an error naming a tensor escapes its name (%s)", e);
  attnrt_ctx_free(ctx);
}

static void test_many_extras(void) {
  enum { N = 150 };
  static char names[N][16];
  st_tensor ts[N + 3];
  float x = 0;
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "extra%03d", i);
    ts[i] = (st_tensor){names[i], "F32", 0, {0}, &x, 4};
  }
  ts[N] = weight(W1);
  ts[N + 1] = bias();
  ts[N + 2] = scale();
  const char *p = tpath("extras.safetensors");
  write_st(p, ts, N + 3);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  const char *w = attnrt_ctx_warnings(ctx);
  int lines = 1;
  for (const char *c = w; *c; c++)
    lines += *c == '\n';
  const char *last = strrchr(w, '\n');
  check(s == ATTNRT_OK && lines == 101 && last != NULL && strcmp(last + 1, "ignoring 50 more tensors") == 0 &&
            strstr(w, "ignoring tensor 'extra099' (not a parameter of model m)\n") != NULL,
        "150 extra tensors: 100 warning lines and a count of the rest");
  attnrt_ctx_free(ctx);
}

static void test_bind_param(void) {
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_tensor w = {ATTNRT_F32, 2, {4, 3}, (void *)W1};
  attnrt_tensor b = {ATTNRT_F32, 1, {4}, (void *)BIAS};
  attnrt_tensor sc = {ATTNRT_I32, 0, {0}, (void *)SCALE};
  int64_t dims[2] = {2, 3};
  float o[8];
  void *in[3] = {(void *)Q, (void *)K, (void *)V};
  void *out[1] = {o};
  attnrt_status s = attnrt_ctx_bind_param(ctx, "linear1.weight", &w);
  check(s == ATTNRT_OK, "bind one parameter");
  s = attnrt_run(ctx, in, out, dims);
  check_err("run with a parameter unbound: exact message", s, ATTNRT_E_MISSING, attnrt_ctx_error(ctx),
            "parameter 'linear1.bias' of model 'm' is not bound (load a weights file or bind it)");
  attnrt_ctx_bind_param(ctx, "linear1.bias", &b);
  attnrt_ctx_bind_param(ctx, "scale", &sc);
  check(run_matches(ctx, W1), "run with every parameter bound by name");

  s = attnrt_ctx_bind_param(ctx, "linear2.weight", &w);
  check_err("bind an unknown name: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "model 'm' has no parameter 'linear2.weight'");
  attnrt_tensor bad = {ATTNRT_F32, 2, {3, 4}, (void *)W1};
  s = attnrt_ctx_bind_param(ctx, "linear1.weight", &bad);
  check_err("bind a mis-shaped tensor: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "parameter 'linear1.weight' has shape [3, 4], but model 'm' expects [4, 3]");
  bad = (attnrt_tensor){ATTNRT_I32, 2, {4, 3}, (void *)W1};
  s = attnrt_ctx_bind_param(ctx, "linear1.weight", &bad);
  check_err("bind a mis-typed tensor: exact message", s, ATTNRT_E_DTYPE, attnrt_ctx_error(ctx),
            "parameter 'linear1.weight' has dtype i32, but model 'm' expects f32");
  bad = (attnrt_tensor){ATTNRT_F32, 2, {4, 3}, (char *)W1 + 2};
  s = attnrt_ctx_bind_param(ctx, "linear1.weight", &bad);
  check_err("bind misaligned data: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "data of parameter 'linear1.weight' is not 4-byte aligned");
  bad = (attnrt_tensor){ATTNRT_F32, 2, {4, 3}, NULL};
  s = attnrt_ctx_bind_param(ctx, "linear1.weight", &bad);
  check_err("bind NULL data: exact message", s, ATTNRT_E_ARG, attnrt_ctx_error(ctx),
            "data of parameter 'linear1.weight' is NULL");
  bad = (attnrt_tensor){ATTNRT_F32, 9, {4, 3}, (void *)W1};
  s = attnrt_ctx_bind_param(ctx, "linear1.weight", &bad);
  check(s == ATTNRT_E_SHAPE, "bind a tensor of rank 9 is ATTNRT_E_SHAPE");
  check(attnrt_ctx_bind_param(ctx, NULL, &w) == ATTNRT_E_ARG && attnrt_ctx_bind_param(ctx, "scale", NULL) == ATTNRT_E_ARG &&
            attnrt_ctx_bind_param(NULL, "scale", &sc) == ATTNRT_E_ARG,
        "NULL name, tensor or ctx is ATTNRT_E_ARG");
  check(run_matches(ctx, W1), "failed binds leave the bound parameters alone");
  attnrt_ctx_free(ctx);
}

/* A model whose parameter has a symbolic dim: never bindable. */
static void test_symbolic_param(void) {
  static const char *const names[] = {"T"};
  static const attnrt_tensor_desc params[] = {{"w", ATTNRT_F32, 2, {-1, 4}}};
  static const attnrt_tensor_desc inputs[] = {{"x", ATTNRT_F32, 1, {-1}}};
  attnrt_model_desc sym = m_model;
  sym.name = "sym";
  sym.n_params = 1;
  sym.n_inputs = 1;
  sym.n_outputs = 0;
  sym.n_dims = 1;
  sym.params = params;
  sym.inputs = inputs;
  sym.dim_names = names;
  attnrt_ctx *ctx = attnrt_ctx_new(&sym);
  float w[8] = {0};
  const char *p = tpath("sym.safetensors");
  st_tensor ts[] = {{"w", "F32", 2, {2, 4}, w, 32}};
  write_st(p, ts, 1);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  check_err("load a parameter with a symbolic dim: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "parameter 'w' of model 'sym' has a symbolic dim [T, 4]");
  attnrt_tensor t = {ATTNRT_F32, 2, {2, 4}, w};
  s = attnrt_ctx_bind_param(ctx, "w", &t);
  check_err("bind a parameter with a symbolic dim: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx),
            "parameter 'w' of model 'sym' has a symbolic dim [T, 4]");
  attnrt_ctx_free(ctx);
}

static void test_embedded(void) {
  static const void *const embedded[] = {W2, BIAS, SCALE};
  attnrt_model_desc emb = m_model;
  emb.embedded = embedded;
  attnrt_ctx *ctx = attnrt_ctx_new(&emb);
  check(ctx != NULL && attnrt_ctx_model(ctx) == &emb, "ctx for a model with embedded weights");
  check(run_matches(ctx, W2), "embedded weights are bound at creation");
  const char *p = tpath("override.safetensors");
  st_tensor ts[] = {weight(W1), bias(), scale()};
  write_st(p, ts, 3);
  check(attnrt_ctx_load_weights(ctx, p) == ATTNRT_OK && run_matches(ctx, W1),
        "a weights file overrides embedded weights");
  attnrt_ctx_free(ctx);
}

/* A bf16 parameter (attnc --weights-dtype bf16): F16, F64 and misaligned
 * BF16 tensors are rounded or copied to bf16 (host order, nearest even);
 * an aligned BF16 tensor is used in place; I32 is refused naming what a
 * bf16 parameter takes.  (F32 files and f32/bf16 binds: tests/cli
 * weights-dtype-bf16.) */
static void test_bf16_param(void) {
  static const attnrt_tensor_desc params[] = {{"w", ATTNRT_BF16, 1, {4}}};
  attnrt_model_desc bm = m_model;
  bm.name = "bm";
  bm.n_params = 1;
  bm.params = params;
  attnrt_ctx *ctx = attnrt_ctx_new(&bm);
  check(strcmp(attnrt_ctx_error(ctx), "") == 0, "a bf16 param is a valid descriptor (%s)", attnrt_ctx_error(ctx));
  /* 1, 1 + 2^-8 (a tie: to even, 1), 1 + 3 2^-8 (a tie: to even, 1 + 2^-6),
   * -2 - 2^-7 + 2^-12 (above half: up in magnitude) */
  static const uint16_t want[4] = {0x3F80, 0x3F80, 0x3F82, 0xC001};
  const double f64[4] = {1.0, 1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, -2.0 - 0x1p-7 - 0x1p-12};
  unsigned char f64le[32];
  for (int i = 0; i < 4; i++) {
    uint64_t bits;
    memcpy(&bits, &f64[i], 8);
    for (int b = 0; b < 8; b++) f64le[8 * i + b] = (unsigned char)(bits >> (8 * b));
  }
  const char *p = tpath("bf16.safetensors");
  st_tensor t64[] = {{"w", "F64", 1, {4}, f64le, 32}};
  write_st(p, t64, 1);
  check(attnrt_ctx_load_weights(ctx, p) == ATTNRT_OK, "F64 to a bf16 param (%s)", attnrt_ctx_error(ctx));
  check(memcmp(attnrt_ctx_param_data(ctx, 0), want, 8) == 0, "F64 rounds to nearest even bf16");
  /* F16 1, 1.5, -2, 2^-24 (an f16 subnormal, 0x3380 in bf16) */
  const unsigned char f16le[8] = {0x00, 0x3C, 0x00, 0x3E, 0x00, 0xC0, 0x01, 0x00};
  static const uint16_t want16[4] = {0x3F80, 0x3FC0, 0xC000, 0x3380};
  st_tensor t16[] = {{"w", "F16", 1, {4}, f16le, 8}};
  write_st(p, t16, 1);
  check(attnrt_ctx_load_weights(ctx, p) == ATTNRT_OK, "F16 to a bf16 param (%s)", attnrt_ctx_error(ctx));
  check(memcmp(attnrt_ctx_param_data(ctx, 0), want16, 8) == 0, "F16 converts to bf16");
  /* BF16 in place when aligned; after a 1-byte tensor, copied */
  const unsigned char bf16le[8] = {0x80, 0x3F, 0xC0, 0x3F, 0x00, 0xC0, 0x80, 0x33};
  unsigned char one = 7;
  st_tensor tb[] = {{"w", "BF16", 1, {4}, bf16le, 8}};
  write_st(p, tb, 1);
  check(attnrt_ctx_load_weights(ctx, p) == ATTNRT_OK, "BF16 to a bf16 param (%s)", attnrt_ctx_error(ctx));
  check(memcmp(attnrt_ctx_param_data(ctx, 0), want16, 8) == 0, "BF16 is bound as it is");
  st_tensor tm[] = {{"pad", "U8", 1, {1}, &one, 1}, {"w", "BF16", 1, {4}, bf16le, 8}};
  write_st(p, tm, 2);
  check(attnrt_ctx_load_weights(ctx, p) == ATTNRT_OK, "misaligned BF16 (%s)", attnrt_ctx_error(ctx));
  check((uintptr_t)attnrt_ctx_param_data(ctx, 0) % 64 == 0 && memcmp(attnrt_ctx_param_data(ctx, 0), want16, 8) == 0,
        "misaligned BF16 is copied, aligned");
  int32_t ints[4] = {0};
  st_tensor ti[] = {{"w", "I32", 1, {4}, ints, 16}};
  write_st(p, ti, 1);
  char want_msg[1024];
  snprintf(want_msg, sizeof want_msg,
           "parameter 'w' in %s has dtype I32, but model 'bm' expects BF16 (or F32, F16, F64)", p);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  check_err("I32 to a bf16 param: exact message", s, ATTNRT_E_DTYPE, attnrt_ctx_error(ctx), want_msg);
  check(memcmp(attnrt_ctx_param_data(ctx, 0), want16, 8) == 0, "a failed load leaves the bf16 param as it was");
  attnrt_ctx_free(ctx);
  /* a bf16 dtype is a param's only: an input with it is a bad descriptor */
  static const attnrt_tensor_desc bad_inputs[] = {{"q", ATTNRT_BF16, 2, {-1, 3}}, {"k", ATTNRT_F32, 2, {-2, 3}},
                                                  {"v", ATTNRT_F32, 2, {-2, 3}}};
  attnrt_model_desc bi = m_model;
  bi.inputs = bad_inputs;
  ctx = attnrt_ctx_new(&bi);
  check(strstr(attnrt_ctx_error(ctx), "input 'q' has dtype 2") != NULL, "a bf16 input is a bad descriptor (%s)",
        attnrt_ctx_error(ctx));
  attnrt_ctx_free(ctx);
}

/* ---- prefixes ------------------------------------------------------------ */

static st_tensor named(const char *name, st_tensor t) {
  t.name = name;
  return t;
}

/* Loads ts with prefix into a new ctx; checks the status and the exact
 * message (fmt takes the file's path) and that nothing got bound. */
static void expect_prefix_load(const char *label, const st_tensor *ts, int n, const char *prefix,
                               attnrt_status want, const char *fmt_with_path) {
  char want_msg[1024];
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  const char *p = tpath("prefix-bad.safetensors");
  write_st(p, ts, n);
  attnrt_status s = attnrt_ctx_load_weights_prefix(ctx, p, prefix);
  snprintf(want_msg, sizeof want_msg, fmt_with_path, p);
  check_err(label, s, want, attnrt_ctx_error(ctx), want_msg);
  check(attnrt_ctx_param_data(ctx, 0) == NULL && attnrt_ctx_param_data(ctx, 1) == NULL &&
            attnrt_ctx_param_data(ctx, 2) == NULL && strcmp(attnrt_ctx_warnings(ctx), "") == 0,
        "%s: nothing is bound, no warnings", label);
  attnrt_ctx_free(ctx);
}

static void test_prefix_load(void) {
  float junk[2] = {0};
  /* A state_dict saved from a bigger module: the params under encoder.,
   * a tensor inside the prefix the model lacks, three outside it (one the
   * bare name of a param, which the prefix must not bind). */
  st_tensor ts[] = {{"decoder.x", "F32", 1, {2}, junk, 8},
                    named("encoder.linear1.weight", weight(W1)),
                    named("linear1.weight", weight(W2)),
                    named("encoder.linear1.bias", bias()),
                    {"encoder.extra", "F32", 1, {2}, junk, 8},
                    named("encoder.scale", scale()),
                    {"decoder.y", "F16", 1, {2}, junk, 4}};
  const char *p = tpath("prefixed.safetensors");
  write_st(p, ts, 7);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights_prefix(ctx, p, "encoder.");
  check(s == ATTNRT_OK && strcmp(attnrt_ctx_error(ctx), "") == 0, "load with the prefix 'encoder.' (%s)",
        attnrt_ctx_error(ctx));
  check(run_matches(ctx, W1), "param p is bound to tensor encoder.p, not to p");
  check_err("tensors inside the prefix one line each, those outside one count: exact text", ATTNRT_OK,
            ATTNRT_OK, attnrt_ctx_warnings(ctx),
            "ignoring tensor 'encoder.extra' (not a parameter of model m)\n"
            "ignoring 3 tensors outside the prefix 'encoder.'");

  /* Without the prefix the same file lacks linear1.bias: the hint names it. */
  char want[1024];
  s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want, sizeof want,
           "missing parameter 'linear1.bias' in %s; the file has 'encoder.linear1.bias': "
           "use --weights-prefix 'encoder.' (attnrt_ctx_load_weights_prefix)", p);
  check_err("the same file without a prefix: the hint names the tensor and the prefix", s, ATTNRT_E_MISSING,
            attnrt_ctx_error(ctx), want);
  check(run_matches(ctx, W1) && strcmp(attnrt_ctx_warnings(ctx), "") == 0,
        "after the failed load the prefixed weights are still bound; no warnings");

  /* A failed load with a prefix leaves the context as it was, too. */
  const void *before[3];
  for (int i = 0; i < 3; i++)
    before[i] = attnrt_ctx_param_data(ctx, i);
  s = attnrt_ctx_load_weights_prefix(ctx, p, "decoder.");
  check(s == ATTNRT_E_MISSING, "the prefix 'decoder.' lacks every param");
  check(attnrt_ctx_param_data(ctx, 0) == before[0] && attnrt_ctx_param_data(ctx, 1) == before[1] &&
            attnrt_ctx_param_data(ctx, 2) == before[2] && run_matches(ctx, W1),
        "a failed prefix load leaves every param where it was");

  /* NULL and "" are no prefix: the file's bare linear1.weight (W2), with
   * the other params from a second file. */
  const char *p2 = tpath("bare.safetensors");
  st_tensor bare[] = {weight(W2), bias(), scale(), {"encoder.z", "F32", 1, {2}, junk, 8}};
  write_st(p2, bare, 4);
  s = attnrt_ctx_load_weights_prefix(ctx, p2, NULL);
  check(s == ATTNRT_OK && run_matches(ctx, W2) &&
            strcmp(attnrt_ctx_warnings(ctx), "ignoring tensor 'encoder.z' (not a parameter of model m)") == 0,
        "prefix NULL: today's load, with today's warnings");
  s = attnrt_ctx_load_weights_prefix(ctx, p2, "");
  check(s == ATTNRT_OK && run_matches(ctx, W2) &&
            strcmp(attnrt_ctx_warnings(ctx), "ignoring tensor 'encoder.z' (not a parameter of model m)") == 0,
        "prefix \"\": the same");
  check(attnrt_ctx_load_weights_prefix(NULL, p2, "x.") == ATTNRT_E_ARG &&
            attnrt_ctx_load_weights_prefix(ctx, NULL, "x.") == ATTNRT_E_ARG,
        "NULL ctx or path is ATTNRT_E_ARG");
  attnrt_ctx_free(ctx);

  /* One tensor outside the prefix: singular. */
  st_tensor one[] = {named("enc.linear1.weight", weight(W1)), named("enc.linear1.bias", bias()),
                     named("enc.scale", scale()), {"head.w", "F32", 1, {2}, junk, 8}};
  write_st(p, one, 4);
  ctx = attnrt_ctx_new(&m_model);
  s = attnrt_ctx_load_weights_prefix(ctx, p, "enc.");
  check_err("one tensor outside the prefix: exact text", s, ATTNRT_OK, attnrt_ctx_warnings(ctx),
            "ignoring 1 tensor outside the prefix 'enc.'");
  attnrt_ctx_free(ctx);
}

static void test_prefix_errors(void) {
  float w34[12] = {0};
  int32_t i12[12] = {0};
  st_tensor miss[] = {named("encoder.linear1.weight", weight(W1)), named("encoder.scale", scale())};
  expect_prefix_load("missing parameter with a prefix: names the param and the tensor", miss, 2, "encoder.",
                     ATTNRT_E_MISSING,
                     "missing parameter 'linear1.bias' (tensor 'encoder.linear1.bias') in %s");
  st_tensor shape[] = {{"encoder.linear1.weight", "F32", 2, {3, 4}, w34, 48}, named("encoder.linear1.bias", bias()),
                       named("encoder.scale", scale())};
  expect_prefix_load("mis-shaped parameter with a prefix: exact message", shape, 3, "encoder.", ATTNRT_E_SHAPE,
                     "parameter 'linear1.weight' (tensor 'encoder.linear1.weight') in %s has shape [3, 4], "
                     "but model 'm' expects [4, 3]");
  st_tensor type[] = {{"encoder.linear1.weight", "I32", 2, {4, 3}, i12, 48}, named("encoder.linear1.bias", bias()),
                      named("encoder.scale", scale())};
  expect_prefix_load("mis-typed parameter with a prefix: exact message", type, 3, "encoder.", ATTNRT_E_DTYPE,
                     "parameter 'linear1.weight' (tensor 'encoder.linear1.weight') in %s has dtype I32, "
                     "but model 'm' expects F32");
  st_tensor f32scale[] = {named("encoder.linear1.weight", weight(W1)), named("encoder.linear1.bias", bias()),
                          {"encoder.scale", "F32", 0, {0}, w34, 4}};
  expect_prefix_load("an F32 tensor for an i32 parameter is not converted: exact message", f32scale, 3,
                     "encoder.", ATTNRT_E_DTYPE,
                     "parameter 'scale' (tensor 'encoder.scale') in %s has dtype F32, but model 'm' expects I32");

  /* The hint (issue 19): every form of it. */
  st_tensor deep[] = {named("encoder.layers.0.linear1.weight", weight(W1)),
                      named("encoder.layers.0.linear1.bias", bias()), named("encoder.layers.0.scale", scale())};
  expect_prefix_load("hint: one tensor ends with .PARAM: exact message", deep, 3, NULL, ATTNRT_E_MISSING,
                     "missing parameter 'linear1.weight' in %s; the file has 'encoder.layers.0.linear1.weight': "
                     "use --weights-prefix 'encoder.layers.0.' (attnrt_ctx_load_weights_prefix)");
  expect_prefix_load("hint: a prefix that is too short", deep, 3, "encoder.", ATTNRT_E_MISSING,
                     "missing parameter 'linear1.weight' (tensor 'encoder.linear1.weight') in %s; the file has "
                     "'encoder.layers.0.linear1.weight': use --weights-prefix 'encoder.layers.0.' "
                     "(attnrt_ctx_load_weights_prefix)");
  st_tensor layers[] = {named("model.b.linear1.weight", weight(W1)), named("model.a.linear1.weight", weight(W1)),
                        named("model.c.linear1.weight", weight(W1)), named("model.a.linear1.bias", bias())};
  expect_prefix_load("hint: several tensors end with .PARAM: the first in the file, and a count", layers, 4, NULL,
                     ATTNRT_E_MISSING,
                     "missing parameter 'linear1.weight' in %s; the file has 'model.b.linear1.weight' and 2 more "
                     "tensors ending in '.linear1.weight': use --weights-prefix 'model.b.' "
                     "(attnrt_ctx_load_weights_prefix) for the first");
  st_tensor plain[] = {weight(W1), bias(), scale()};
  expect_prefix_load("hint: a prefix the file does not need", plain, 3, "encoder.", ATTNRT_E_MISSING,
                     "missing parameter 'linear1.weight' (tensor 'encoder.linear1.weight') in %s; the file has "
                     "'linear1.weight': load it with no prefix");
  st_tensor near[] = {named("mylinear1.weight", weight(W1)), named("x.linear1.weights", weight(W1))};
  expect_prefix_load("no hint for names that only end with the same characters", near, 2, NULL, ATTNRT_E_MISSING,
                     "missing parameter 'linear1.weight' in %s");
}

static void test_prefix_many_extras(void) {
  enum { IN = 150, OUT = 37 };
  static char names[IN + OUT][24];
  st_tensor ts[IN + OUT + 3];
  float x = 0;
  for (int i = 0; i < IN + OUT; i++) {
    snprintf(names[i], sizeof names[i], i < IN ? "enc.extra%03d" : "head.w%03d", i);
    ts[i] = (st_tensor){names[i], "F32", 0, {0}, &x, 4};
  }
  ts[IN + OUT] = named("enc.linear1.weight", weight(W1));
  ts[IN + OUT + 1] = named("enc.linear1.bias", bias());
  ts[IN + OUT + 2] = named("enc.scale", scale());
  const char *p = tpath("prefix-extras.safetensors");
  write_st(p, ts, IN + OUT + 3);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights_prefix(ctx, p, "enc.");
  const char *w = attnrt_ctx_warnings(ctx);
  int lines = 1;
  for (const char *c = w; *c; c++)
    lines += *c == '\n';
  check(s == ATTNRT_OK && lines == 102 &&
            strstr(w, "ignoring tensor 'enc.extra099' (not a parameter of model m)\n"
                      "ignoring 50 more tensors\n"
                      "ignoring 37 tensors outside the prefix 'enc.'") != NULL &&
            strstr(w, "head.w") == NULL,
        "150 extras inside the prefix, 37 outside: 100 lines, a count of the rest, one line for those outside");
  attnrt_ctx_free(ctx);
}

int main(void) {
  tmpdir_make("weights");
  test_good_load();
  test_bad_loads();
  test_many_extras();
  test_escaped_names();
  test_bind_param();
  test_symbolic_param();
  test_embedded();
  test_bf16_param();
  test_prefix_load();
  test_prefix_errors();
  test_prefix_many_extras();
  tmpdir_remove();
  return test_finish("test_weights");
}
