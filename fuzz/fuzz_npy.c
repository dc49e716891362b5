/* fuzz_npy.c: bytes as a .npy file -> attnrt_npy_read, then the tensor read
 * as the input of a model (attnrt_bind_dims).
 *
 * Properties: a read either succeeds with a tensor whose every byte can
 * be read (ASan watches the buffer) and whose size is what the file
 * holds after its header, or fails with no data and a message naming the
 * file; binding the tensor either sets the model's dims from its shape or
 * fails with a message naming the input. */
#include <string.h>

#include <attnrt.h>

#include "fuzz.h"

static int32_t no_body(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                       const int64_t *d, void *s, void *pr) {
  return ATTNRT_E_ARG;
}

/* input x: f32[T, 3, S]: one fixed dim, two symbolic ones. */
static const attnrt_tensor_desc x_desc[] = {{"x", ATTNRT_F32, 3, {-1, 3, -2}}};
static const char *const dim_names[] = {"T", "S"};
static const attnrt_model_desc model = {
    .abi_version = ATTNRT_ABI_VERSION, .name = "fuzz", .n_inputs = 1, .n_dims = 2,
    .inputs = x_desc, .dim_names = dim_names, .body = no_body};

static void bind_as_input(const attnrt_tensor *t) {
  attnrt_ctx *ctx = attnrt_ctx_new(&model);
  FUZZ_CHECK(ctx != NULL);
  int64_t dims[2] = {-7, -7};
  attnrt_status s = attnrt_bind_dims(ctx, t, dims);
  if (s == ATTNRT_OK) {
    FUZZ_CHECK(t->rank == 3 && t->dims[0] == dims[0] && t->dims[1] == 3 && t->dims[2] == dims[1]);
    FUZZ_CHECK(dims[0] >= 0 && dims[1] >= 0);   /* a dim may be 0: an empty tensor */
  } else {
    FUZZ_CHECK(strstr(attnrt_ctx_error(ctx), "'x'") != NULL);
  }
  attnrt_ctx_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_bytes_as_file(data, size);
  char err[1024] = "";
  attnrt_tensor t;
  attnrt_status s = attnrt_npy_read(path, &t, err, sizeof err);
  if (s != ATTNRT_OK) {
    FUZZ_CHECK(t.data == NULL);
    FUZZ_CHECK(strstr(err, path) != NULL);
    return 0;
  }
  FUZZ_CHECK(t.rank >= 0 && t.rank <= ATTNRT_MAX_RANK);
  int64_t n = attnrt_tensor_numel(&t);
  FUZZ_CHECK(n >= 0 && (size_t)n * 4 <= size);
  /* Every element is readable, and holds the file's last 4n bytes. */
  FUZZ_CHECK(n == 0 || memcmp(t.data, data + size - (size_t)n * 4, (size_t)n * 4) == 0);
  bind_as_input(&t);
  attnrt_tensor_free(&t);
  FUZZ_CHECK(t.data == NULL);
  return 0;
}
