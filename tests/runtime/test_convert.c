/* test_convert: F16, BF16 and F64 tensors bound to f32 params by
 * attnrt_ctx_load_weights, bit for bit against conversions.h (NumPy's and
 * PyTorch's casts, written by gen_conversions.py) and against hand-derived
 * bits; what cannot convert; where the data lives (F32 in the mapping,
 * converted data in memory the ctx owns) and that a failed load leaves it
 * all as it was.  Run it under ASan too: the ctx must free what it owns. */
#include "test_util.h"
#include "test_model.h"
#include "conversions.h"

#include <math.h>

#define COUNT(a) ((int64_t)(sizeof a / sizeof a[0]))

static int32_t no_body(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                       const int64_t *d, void *s, void *pr) {
  (void)ctx, (void)p, (void)i, (void)o, (void)d, (void)s, (void)pr;
  return ATTNRT_E_ARG;
}

/* A model with one f32 param per table, an i32 param and an empty one. */
static const attnrt_tensor_desc cv_params[] = {
  {"h", ATTNRT_F32, 1, {COUNT(F16_CASES)}},
  {"b", ATTNRT_F32, 1, {COUNT(BF16_CASES)}},
  {"d", ATTNRT_F32, 1, {COUNT(F64_CASES)}},
  {"k", ATTNRT_I32, 1, {2}},
  {"z", ATTNRT_F32, 2, {0, 3}},
};
static const attnrt_model_desc cv_model = {
  ATTNRT_ABI_VERSION, "cv", 5, 0, 0, 0, cv_params, NULL, NULL, NULL, no_body, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL,
};

/* The tables' sources as the file stores them: little-endian. */
static uint16_t f16_in[COUNT(F16_CASES)], bf16_in[COUNT(BF16_CASES)];
static uint64_t f64_in[COUNT(F64_CASES)];
static const int32_t K[2] = {7, -7};

static void le_bytes(void *dst, uint64_t v, int n) {
  unsigned char *b = dst;
  for (int i = 0; i < n; i++)
    b[i] = (unsigned char)(v >> (8 * i));
}

static void fill_sources(void) {
  for (int64_t i = 0; i < COUNT(F16_CASES); i++)
    le_bytes(&f16_in[i], F16_CASES[i].in, 2);
  for (int64_t i = 0; i < COUNT(BF16_CASES); i++)
    le_bytes(&bf16_in[i], BF16_CASES[i].in, 2);
  for (int64_t i = 0; i < COUNT(F64_CASES); i++)
    le_bytes(&f64_in[i], F64_CASES[i].in, 8);
}

static void write_cv(const char *path) {
  st_tensor ts[] = {
    {"h", "F16", 1, {COUNT(F16_CASES)}, f16_in, sizeof f16_in},
    {"b", "BF16", 1, {COUNT(BF16_CASES)}, bf16_in, sizeof bf16_in},
    {"d", "F64", 1, {COUNT(F64_CASES)}, f64_in, sizeof f64_in},
    {"k", "I32", 1, {2}, K, 8},
    {"z", "F16", 2, {0, 3}, NULL, 0},
  };
  write_st(path, ts, 5);
}

static uint32_t bits_of(const void *p, int64_t i) {
  uint32_t u;
  memcpy(&u, (const char *)p + 4 * i, 4);
  return u;
}

/* Every element against its table; a failing case says which. */
static bool table_matches(const char *what, const void *got, const void *cases, int64_t n, bool wide) {
  bool ok = got != NULL;
  for (int64_t i = 0; ok && i < n; i++) {
    uint32_t want = wide ? ((const conv64 *)cases)[i].out : ((const conv16 *)cases)[i].out;
    const char *why = wide ? ((const conv64 *)cases)[i].why : ((const conv16 *)cases)[i].why;
    if (bits_of(got, i) != want) {
      printf("     %s case %lld (%s): got 0x%08X, want 0x%08X\n", what, (long long)i, why, bits_of(got, i), want);
      ok = false;
    }
  }
  return ok;
}

static void test_tables(void) {
  const char *p = tpath("cv.safetensors");
  write_cv(p);
  attnrt_ctx *ctx = attnrt_ctx_new(&cv_model);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  check(s == ATTNRT_OK && strcmp(attnrt_ctx_warnings(ctx), "") == 0, "load F16, BF16, F64 and I32 tensors (%s)",
        attnrt_ctx_error(ctx));
  check(table_matches("F16", attnrt_ctx_param_data(ctx, 0), F16_CASES, COUNT(F16_CASES), false),
        "F16 -> f32: %lld cases bit for bit (subnormals, +-inf, NaN)", (long long)COUNT(F16_CASES));
  check(table_matches("BF16", attnrt_ctx_param_data(ctx, 1), BF16_CASES, COUNT(BF16_CASES), false),
        "BF16 -> f32: %lld cases bit for bit", (long long)COUNT(BF16_CASES));
  check(table_matches("F64", attnrt_ctx_param_data(ctx, 2), F64_CASES, COUNT(F64_CASES), true),
        "F64 -> f32: %lld cases bit for bit (ties to even, subnormals, inf, NaN)", (long long)COUNT(F64_CASES));
  const int32_t *k = attnrt_ctx_param_data(ctx, 3);
  check(k != NULL && k[0] == 7 && k[1] == -7, "the I32 param is bound as it is");
  const void *z = attnrt_ctx_param_data(ctx, 4);
  check(z != NULL && (uintptr_t)z % 64 == 0, "an empty F16 tensor binds to non-NULL, aligned memory");
  for (int i = 0; i < 3; i++)
    check((uintptr_t)attnrt_ctx_param_data(ctx, i) % 64 == 0, "converted param %d is 64-byte aligned", i);
  attnrt_ctx_free(ctx);
}

/* Hand-derived bits, independent of the tables: the fields of each format
 * (sign | exponent | mantissa) written out. */
static void test_hand_derived(void) {
  /* f16 0 00000 0000000001 = 2^-24 -> f32 0 01100111 000...0 (127 - 24 = 103)
   * f16 0 00000 1000000000 = 2^-15 -> f32 0 01110000 000...0 (112)
   * f16 1 00000 0000000011 = -3 * 2^-24 = -1.5 * 2^-23 -> f32 1 01101000 100...0
   * f16 0 11110 1111111111 = 65504 -> f32 0 10001110 1111111111 0000000000000
   * f16 1 11111 0000000000 = -inf -> f32 1 11111111 000...0 */
  uint16_t h[5];
  le_bytes(&h[0], 0x0001, 2);
  le_bytes(&h[1], 0x0200, 2);
  le_bytes(&h[2], 0x8003, 2);
  le_bytes(&h[3], 0x7BFF, 2);
  le_bytes(&h[4], 0xFC00, 2);
  const uint32_t want_h[5] = {0x33800000, 0x38000000, 0xB4400000, 0x477FE000, 0xFF800000};
  /* bf16 is the top half of an f32: 0x4049 -> 0x40490000 (3.140625),
   * 0x8001 -> 0x80010000 (a negative subnormal). */
  uint16_t b[2];
  le_bytes(&b[0], 0x4049, 2);
  le_bytes(&b[1], 0x8001, 2);
  const uint32_t want_b[2] = {0x40490000, 0x80010000};
  /* f64 1 + 2^-23 + 2^-24 = 0x3FF0000030000000: mantissa bits 51..29 keep
   * 1 + 2^-23, the dropped part is exactly half an ulp and the kept last
   * bit is 1 (odd): to even is up, 1 + 2^-22 = 0x3F800002.
   * f64 2^-149 * 1.5 = 0x36A8000000000000: half way between 2^-149 (odd
   * mantissa 1) and 2^-148 (even, 2): 2^-148 = 0x00000002. */
  uint64_t d[2];
  le_bytes(&d[0], UINT64_C(0x3FF0000030000000), 8);
  le_bytes(&d[1], UINT64_C(0x36A8000000000000), 8);
  const uint32_t want_d[2] = {0x3F800002, 0x00000002};
  static const attnrt_tensor_desc ps[] = {
    {"h", ATTNRT_F32, 1, {5}}, {"b", ATTNRT_F32, 1, {2}}, {"d", ATTNRT_F32, 1, {2}}};
  attnrt_model_desc md = cv_model;
  md.n_params = 3;
  md.params = ps;
  st_tensor ts[] = {{"h", "F16", 1, {5}, h, 10}, {"b", "BF16", 1, {2}, b, 4}, {"d", "F64", 1, {2}, d, 16}};
  const char *p = tpath("hand.safetensors");
  /* h ends at byte 10: b starts 2-byte aligned but not 4, d at 14, not 8;
   * the conversions read bytes, wherever they are. */
  write_st(p, ts, 3);
  attnrt_ctx *ctx = attnrt_ctx_new(&md);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  check(s == ATTNRT_OK, "load misaligned F16, BF16, F64 tensors (%s)", attnrt_ctx_error(ctx));
  const void *gh = attnrt_ctx_param_data(ctx, 0), *gb = attnrt_ctx_param_data(ctx, 1),
             *gd = attnrt_ctx_param_data(ctx, 2);
  bool ok = gh != NULL && gb != NULL && gd != NULL;
  for (int i = 0; ok && i < 5; i++)
    ok = bits_of(gh, i) == want_h[i];
  check(ok, "F16 -> f32 by hand: subnormals, a negative subnormal, 65504, -inf");
  check(gb != NULL && bits_of(gb, 0) == want_b[0] && bits_of(gb, 1) == want_b[1], "BF16 -> f32 by hand");
  check(gd != NULL && bits_of(gd, 0) == want_d[0] && bits_of(gd, 1) == want_d[1],
        "F64 -> f32 by hand: two ties to even that round up");
  attnrt_ctx_free(ctx);
}

/* True if p lies in a mapping of the file path (Linux: /proc/self/maps). */
static bool in_mapping_of(const void *p, const char *path) {
  char real[4096], line[8192];
  if (realpath(path, real) == NULL)
    return false;
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL)
    return false;
  bool found = false;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    int off = 0;
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || off == 0)
      continue;
    line[strcspn(line, "\n")] = '\0';
    found = strcmp(line + off, real) == 0 && (uintptr_t)p >= lo && (uintptr_t)p < hi;
  }
  fclose(f);
  return found;
}

static const float W[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
static const float B[4] = {0.5f, -0.5f, 0.25f, 0};
static const int32_t SCALE[1] = {3};

static bool run_matches(attnrt_ctx *ctx) {
  return m_run_matches(ctx, W, B, SCALE[0]);
}

/* W and B (small dyadic numbers, exact in every format) as F16, BF16 and
 * F64: runs compute exactly what they compute on the F32 file. */
static void test_run_converted(void) {
  uint16_t w16[12], b16[4];
  uint64_t w64[12];
  for (int i = 0; i < 12; i++) {
    /* 0 and 1 only: f16 1.0 = 0x3C00, f64 1.0 = 0x3FF0000000000000 */
    le_bytes(&w16[i], W[i] == 1 ? 0x3C00 : 0, 2);
    le_bytes(&w64[i], W[i] == 1 ? UINT64_C(0x3FF0000000000000) : 0, 8);
  }
  /* bf16: 0.5 = 0x3F00, -0.5 = 0xBF00, 0.25 = 0x3E80, 0 */
  const uint16_t bb[4] = {0x3F00, 0xBF00, 0x3E80, 0x0000};
  for (int i = 0; i < 4; i++)
    le_bytes(&b16[i], bb[i], 2);
  const char *p32 = tpath("m32.safetensors"), *p16 = tpath("m16.safetensors"), *p64 = tpath("m64.safetensors");
  st_tensor f32s[] = {{"linear1.weight", "F32", 2, {4, 3}, W, 48}, {"linear1.bias", "F32", 1, {4}, B, 16},
                      {"scale", "I32", 0, {0}, SCALE, 4}};
  st_tensor f16s[] = {{"linear1.weight", "F16", 2, {4, 3}, w16, 24}, {"linear1.bias", "BF16", 1, {4}, b16, 8},
                      {"scale", "I32", 0, {0}, SCALE, 4}};
  st_tensor f64s[] = {{"scale", "I32", 0, {0}, SCALE, 4}, {"linear1.weight", "F64", 2, {4, 3}, w64, 96},
                      {"linear1.bias", "F32", 1, {4}, B, 16}};
  write_st(p32, f32s, 3);
  write_st(p16, f16s, 3);
  write_st(p64, f64s, 3);

  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p32);
  check(s == ATTNRT_OK && run_matches(ctx), "run on F32 weights");
  const void *w = attnrt_ctx_param_data(ctx, 0);
  check(in_mapping_of(w, p32) && in_mapping_of(attnrt_ctx_param_data(ctx, 1), p32),
        "aligned F32 params are used in place, in the file's mapping (no copy)");
  s = attnrt_ctx_load_weights(ctx, p16);
  check(s == ATTNRT_OK && run_matches(ctx), "run on F16 weights and a BF16 bias: the same bits (%s)",
        attnrt_ctx_error(ctx));
  const void *w16p = attnrt_ctx_param_data(ctx, 0);
  check(!in_mapping_of(w16p, p16) && (uintptr_t)w16p % 64 == 0 &&
            in_mapping_of(attnrt_ctx_param_data(ctx, 2), p16),
        "converted params live in the ctx's own aligned memory, I32 in the mapping");
  s = attnrt_ctx_load_weights(ctx, p64);
  check(s == ATTNRT_OK && run_matches(ctx), "run on F64 weights, an F32 bias: the same bits (%s)",
        attnrt_ctx_error(ctx));
  check(in_mapping_of(attnrt_ctx_param_data(ctx, 1), p64) && !in_mapping_of(attnrt_ctx_param_data(ctx, 0), p64),
        "mixed: the F32 bias in place, the F64 weight converted");

  /* A failed load (here: F64 beyond f32) leaves every param where it was,
   * and the memory it points at alive (ASan sees a use after free). */
  const void *before[3];
  float wcopy[12];
  for (int i = 0; i < 3; i++)
    before[i] = attnrt_ctx_param_data(ctx, i);
  memcpy(wcopy, before[0], sizeof wcopy);
  uint64_t big[12];
  memcpy(big, w64, sizeof big);
  le_bytes(&big[7], UINT64_C(0xC7EFFFFFF0000000), 8); /* -(FLT_MAX + half an ulp): rounds to -inf */
  const char *pbig = tpath("big.safetensors");
  st_tensor bigs[] = {{"linear1.weight", "F64", 2, {4, 3}, big, 96}, {"linear1.bias", "BF16", 1, {4}, b16, 8},
                      {"scale", "I32", 0, {0}, SCALE, 4}};
  write_st(pbig, bigs, 3);
  s = attnrt_ctx_load_weights(ctx, pbig);
  char want[1024];
  snprintf(want, sizeof want,
           "parameter 'linear1.weight' in %s: the F64 value -3.402823568e+38 at element 7 is beyond the range "
           "of f32 (it would round to -inf)", pbig);
  check_err("F64 -(FLT_MAX + half an ulp): an error, exact message", s, ATTNRT_E_RANGE, attnrt_ctx_error(ctx), want);
  check(attnrt_ctx_param_data(ctx, 0) == before[0] && attnrt_ctx_param_data(ctx, 1) == before[1] &&
            attnrt_ctx_param_data(ctx, 2) == before[2] && memcmp(before[0], wcopy, sizeof wcopy) == 0 &&
            run_matches(ctx),
        "after the failed load every param is where it was, with its values");
  /* The same value with a prefix names the tensor too. */
  st_tensor pbigs[] = {{"enc.linear1.weight", "F64", 2, {4, 3}, big, 96}, {"enc.linear1.bias", "F32", 1, {4}, B, 16},
                       {"enc.scale", "I32", 0, {0}, SCALE, 4}};
  write_st(pbig, pbigs, 3);
  s = attnrt_ctx_load_weights_prefix(ctx, pbig, "enc.");
  snprintf(want, sizeof want,
           "parameter 'linear1.weight' (tensor 'enc.linear1.weight') in %s: the F64 value -3.402823568e+38 at "
           "element 7 is beyond the range of f32 (it would round to -inf)", pbig);
  check_err("F64 out of range with a prefix: exact message", s, ATTNRT_E_RANGE, attnrt_ctx_error(ctx), want);
  check(run_matches(ctx) && attnrt_ctx_param_data(ctx, 0) == before[0], "and the ctx is still as it was");

  /* A second converted load replaces the first block (ASan: no leak). */
  check(attnrt_ctx_load_weights(ctx, p16) == ATTNRT_OK && attnrt_ctx_load_weights(ctx, p16) == ATTNRT_OK &&
            run_matches(ctx),
        "converted loads in a row replace each other's memory");
  attnrt_ctx_free(ctx);
}

static void expect_dtype(const char *label, const char *dtype, int64_t size, attnrt_status want,
                         const char *fmt_with_path) {
  unsigned char zeros[96] = {0};
  char msg[1024];
  st_tensor ts[] = {{"linear1.weight", "F32", 2, {4, 3}, W, 48}, {"linear1.bias", dtype, 1, {4}, zeros, (size_t)(4 * size)},
                    {"scale", "I32", 0, {0}, SCALE, 4}};
  const char *p = tpath("dtype.safetensors");
  write_st(p, ts, 3);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  snprintf(msg, sizeof msg, fmt_with_path, p, dtype);
  check_err(label, s, want, attnrt_ctx_error(ctx), msg);
  check(attnrt_ctx_param_data(ctx, 0) == NULL, "%s: nothing bound", label);
  attnrt_ctx_free(ctx);
}

static void test_not_convertible(void) {
  static const struct { const char *dtype; int64_t size; } bad[] = {
    {"I64", 8}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U32", 4}, {"C64", 8},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char label[96];
    snprintf(label, sizeof label, "%s for an f32 param: the dtype error naming it", bad[i].dtype);
    expect_dtype(label, bad[i].dtype, bad[i].size, ATTNRT_E_DTYPE,
                 "parameter 'linear1.bias' in %s has dtype %s, but model 'm' expects F32");
  }
  uint16_t h[12] = {0};
  float f[12] = {0};
  const char *p = tpath("shape16.safetensors");
  char want[1024];
  /* i32 params take I32 only: F16, F64 are not converted to integers. */
  st_tensor i16[] = {{"linear1.weight", "F32", 2, {4, 3}, W, 48}, {"linear1.bias", "F32", 1, {4}, B, 16},
                     {"scale", "F16", 0, {0}, h, 2}};
  write_st(p, i16, 3);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  attnrt_status s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want, sizeof want, "parameter 'scale' in %s has dtype F16, but model 'm' expects I32", p);
  check_err("F16 for an i32 param: exact message", s, ATTNRT_E_DTYPE, attnrt_ctx_error(ctx), want);
  /* Converted tensors are checked for shape as F32 ones are. */
  st_tensor sh[] = {{"linear1.weight", "F16", 2, {3, 4}, h, 24}, {"linear1.bias", "F32", 1, {4}, B, 16},
                    {"scale", "I32", 0, {0}, SCALE, 4}};
  write_st(p, sh, 3);
  s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want, sizeof want, "parameter 'linear1.weight' in %s has shape [3, 4], but model 'm' expects [4, 3]", p);
  check_err("a mis-shaped F16 tensor: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx), want);
  st_tensor r5[] = {{"linear1.weight", "BF16", 5, {1, 1, 4, 3, 1}, h, 24}, {"linear1.bias", "F32", 1, {4}, B, 16},
                    {"scale", "I32", 0, {0}, SCALE, 4}};
  write_st(p, r5, 3);
  s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want, sizeof want, "parameter 'linear1.weight' in %s has rank 5", p);
  check_err("a BF16 tensor of rank 5: exact message", s, ATTNRT_E_SHAPE, attnrt_ctx_error(ctx), want);
  st_tensor f64[] = {{"linear1.weight", "F64", 1, {12}, f, 96}, {"linear1.bias", "F32", 1, {4}, B, 16},
                     {"scale", "I32", 0, {0}, SCALE, 4}};
  unsigned char f64bytes[96] = {0};
  f64[0].data = f64bytes;
  write_st(p, f64, 3);
  s = attnrt_ctx_load_weights(ctx, p);
  snprintf(want, sizeof want, "parameter 'linear1.weight' in %s has shape [12], but model 'm' expects [4, 3]", p);
  check_err("an F64 tensor of the right size but another shape: exact message", s, ATTNRT_E_SHAPE,
            attnrt_ctx_error(ctx), want);
  attnrt_ctx_free(ctx);
}

/* Finite F64 values that would round to inf are errors; those that round
 * to FLT_MAX, infinities and NaN are not. */
static void test_f64_range(void) {
  static const struct { uint64_t bits; const char *shown; } over[] = {
    {UINT64_C(0x47EFFFFFF0000000), "3.402823568e+38"},  /* FLT_MAX + half an ulp: the tie rounds to even, inf */
    {UINT64_C(0x48078287F49C4A1D), "1e+39"},
    {UINT64_C(0xFFEFFFFFFFFFFFFF), "-1.797693135e+308"}, /* -DBL_MAX */
  };
  static const attnrt_tensor_desc ps[] = {{"x", ATTNRT_F32, 1, {3}}};
  attnrt_model_desc md = cv_model;
  md.n_params = 1;
  md.params = ps;
  const char *p = tpath("range.safetensors");
  for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
    uint64_t d[3];
    le_bytes(&d[0], UINT64_C(0x7FF0000000000000), 8); /* +inf: fine */
    le_bytes(&d[1], UINT64_C(0x7FF8000000000000), 8); /* NaN: fine */
    le_bytes(&d[2], over[i].bits, 8);
    st_tensor ts[] = {{"x", "F64", 1, {3}, d, 24}};
    write_st(p, ts, 1);
    attnrt_ctx *ctx = attnrt_ctx_new(&md);
    attnrt_status s = attnrt_ctx_load_weights(ctx, p);
    char want[1024];
    snprintf(want, sizeof want,
             "parameter 'x' in %s: the F64 value %s at element 2 is beyond the range of f32 (it would round "
             "to %sinf)", p, over[i].shown, over[i].shown[0] == '-' ? "-" : "");
    check_err(over[i].shown, s, ATTNRT_E_RANGE, attnrt_ctx_error(ctx), want);
    check(attnrt_ctx_param_data(ctx, 0) == NULL, "%s: nothing bound", over[i].shown);
    attnrt_ctx_free(ctx);
  }
}

int main(void) {
  tmpdir_make("convert");
  fill_sources();
  test_tables();
  test_hand_derived();
  test_run_converted();
  test_not_convertible();
  test_f64_range();
  tmpdir_remove();
  return test_finish("test_convert");
}
