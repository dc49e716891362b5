/* fuzz_safetensors.c: bytes as a .safetensors file -> attnrt_st_open and
 * every entry, then attnrt_ctx_load_weights for a model whose params the
 * file may or may not hold (F32, or F16/BF16/F64 converted to f32), with
 * no prefix and with the prefix "p.".
 *
 * Properties: an open either fails with a message naming the file, or
 * every entry's data lies inside the file (ASan would see a read past the
 * mapping; the check below sees one past the data region) and is found
 * by its name; a load either binds every param to data of its shape or
 * fails with a message naming the file. */
#include <string.h>

#include <attnrt.h>

#include "fuzz.h"

static int32_t no_body(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                       const int64_t *d, void *s, void *pr) {
  return ATTNRT_E_ARG;
}

/* Params named and shaped as the seeds' tensors, so that loads get past
 * the name lookup: f32 w [2, 3], f32 b [3], i32 ids [4]. */
static const attnrt_tensor_desc params[] = {
    {"w", ATTNRT_F32, 2, {2, 3}}, {"b", ATTNRT_F32, 1, {3}}, {"ids", ATTNRT_I32, 1, {4}}};
static const attnrt_model_desc model = {
    .abi_version = ATTNRT_ABI_VERSION, .name = "fuzz", .n_params = 3, .params = params,
    .body = no_body};

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void check_entries(const attnrt_safetensors *st, const uint8_t *data, size_t size) {
  /* The data region: after the 8-byte length and the header. */
  size_t region = 8 + (size_t)le64(data);
  for (int i = 0; i < attnrt_st_count(st); i++) {
    const char *name = attnrt_st_name(st, i);
    FUZZ_CHECK(name != NULL);
    FUZZ_CHECK(attnrt_st_find(st, name) == i);
    attnrt_tensor t;
    FUZZ_CHECK(attnrt_st_get(st, i, &t) == ATTNRT_OK);
    if (t.rank < 0) {
      FUZZ_CHECK(t.data == NULL);
      continue;
    }
    FUZZ_CHECK(t.rank <= ATTNRT_MAX_RANK);
    int64_t n = attnrt_tensor_numel(&t);
    FUZZ_CHECK(n >= 0 && (size_t)n * 4 <= size - region);
    /* The bytes are the file's, wherever they were copied to (searched
     * for only in small inputs: the search is quadratic). */
    if (n > 0 && size <= 65536) {
      const uint8_t *p = t.data;
      int found = 0;
      for (size_t off = region; off + (size_t)n * 4 <= size && !found; off++)
        found = memcmp(p, data + off, (size_t)n * 4) == 0;
      FUZZ_CHECK(found);
    }
  }
}

static void load_into_model(const char *path, const char *prefix) {
  attnrt_ctx *ctx = attnrt_ctx_new(&model);
  FUZZ_CHECK(ctx != NULL);
  if (attnrt_ctx_load_weights_prefix(ctx, path, prefix) == ATTNRT_OK) {
    for (int i = 0; i < 3; i++) {
      const float *p = attnrt_ctx_param_data(ctx, i);
      FUZZ_CHECK(p != NULL);
      volatile float sum = 0;
      for (int64_t k = 0; k < params[i].dims[0] * (params[i].rank > 1 ? params[i].dims[1] : 1); k++)
        sum += p[k];
    }
  } else {
    FUZZ_CHECK(strstr(attnrt_ctx_error(ctx), path) != NULL);
  }
  attnrt_ctx_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_bytes_as_file(data, size);
  char err[1024] = "";
  attnrt_safetensors *st = NULL;
  if (attnrt_st_open(path, &st, err, sizeof err) != ATTNRT_OK) {
    FUZZ_CHECK(st == NULL);
    FUZZ_CHECK(strstr(err, path) != NULL);
  } else {
    check_entries(st, data, size);
    attnrt_st_close(st);
  }
  load_into_model(path, NULL);
  load_into_model(path, "p.");
  return 0;
}
