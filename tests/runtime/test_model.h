/* test_model.h: a hand-written model descriptor standing in for what attnc
 * emits, so the runtime can be tested without the compiler.
 *
 *   model m {
 *     input q: f32[T, 3]   input k: f32[S, 3]   input v: f32[S, 3]
 *     param linear1.weight: f32[4, 3]   param linear1.bias: f32[4]
 *     param scale: i32[]
 *     output o: f32[T, 4] = q @ W^T + b + scale * sum_s(k[s, 0] * v[s, 0])
 *   }
 * It needs T*S*4 bytes of scratch and fills all of them, so a short scratch
 * buffer shows under ASan. */
#ifndef ATTNRT_TEST_MODEL_H
#define ATTNRT_TEST_MODEL_H

#include "attnrt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const m_dim_names[] = {"T", "S"};
static const attnrt_tensor_desc m_params[] = {
  {"linear1.weight", ATTNRT_F32, 2, {4, 3}},
  {"linear1.bias", ATTNRT_F32, 1, {4}},
  {"scale", ATTNRT_I32, 0, {0}},
};
static const attnrt_tensor_desc m_inputs[] = {
  {"q", ATTNRT_F32, 2, {-1, 3}},
  {"k", ATTNRT_F32, 2, {-2, 3}},
  {"v", ATTNRT_F32, 2, {-2, 3}},
};
static const attnrt_tensor_desc m_outputs[] = {
  {"o", ATTNRT_F32, 2, {-1, 4}},
};

/* The scratch pointer the last body on this thread saw. */
static _Thread_local void *m_last_scratch;

/* bufs: q, W, b, o, and the scalar term. */
static void m_kernel(void *const *bufs, const int64_t *dims, int64_t begin, int64_t end) {
  const float *q = bufs[0], *w = bufs[1], *b = bufs[2];
  float *o = bufs[3];
  float extra = *(const float *)bufs[4];
  (void)dims;
  for (int64_t t = begin; t < end; t++)
    for (int i = 0; i < 4; i++) {
      float acc = b[i] + extra;
      for (int j = 0; j < 3; j++)
        acc += w[i * 3 + j] * q[t * 3 + j];
      o[t * 4 + i] = acc;
    }
}

static float m_extra(const float *k, const float *v, int64_t S, int32_t scale) {
  float s = 0;
  for (int64_t i = 0; i < S; i++)
    s += k[i * 3] * v[i * 3];
  return (float)scale * s;
}

static int32_t m_body(struct attnrt_ctx *ctx, void *const *params, void *const *inputs,
                      void *const *outputs, const int64_t *dims, void *scratch, void *prepared) {
  int64_t T = dims[0], S = dims[1];
  m_last_scratch = scratch;
  memset(scratch, 0x5A, (size_t)(T * S * 4));
  float extra = m_extra(inputs[1], inputs[2], S, *(const int32_t *)params[2]);
  void *bufs[5] = {inputs[0], params[0], params[1], outputs[0], &extra};
  attnrt_parallel_for(ctx, m_kernel, bufs, dims, T, 1);
  return ATTNRT_OK;
}

static int64_t m_scratch_size(const int64_t *dims) {
  if (dims[0] > INT64_MAX / 4 / dims[1])
    return -1;
  return dims[0] * dims[1] * 4;
}

static const attnrt_model_desc m_model = {
  ATTNRT_ABI_VERSION, "m", 3, 3, 1, 2, m_params, m_inputs, m_outputs, m_dim_names,
  m_body, m_scratch_size, NULL, 0, NULL, NULL, NULL, NULL, NULL,
};

/* The expected output, computed the plain way. */
static inline void m_reference(const float *q, const float *k, const float *v, const float *w,
                        const float *b, int32_t scale, int64_t T, int64_t S, float *o) {
  float extra = m_extra(k, v, S, scale);
  void *bufs[5] = {(void *)q, (void *)w, (void *)b, o, &extra};
  m_kernel(bufs, NULL, 0, T);
}

/* Inputs with T = 2, S = 3. */
static const float m_q[6] = {1, 2, 3, 4, 5, 6};
static const float m_k[9] = {1, 0, 0, 2, 0, 0, 3, 0, 0};
static const float m_v[9] = {1, 0, 0, 1, 0, 0, 1, 0, 0};

/* Runs m on m_q, m_k, m_v and compares, bit for bit, with the reference
 * for the params w, b and scale. */
static inline bool m_run_matches(attnrt_ctx *ctx, const float *w, const float *b, int32_t scale) {
  float o[8], want[8];
  int64_t dims[2] = {2, 3};
  void *in[3] = {(void *)m_q, (void *)m_k, (void *)m_v};
  void *out[1] = {o};
  if (attnrt_run(ctx, in, out, dims) != ATTNRT_OK) {
    printf("     run failed: %s\n", attnrt_ctx_error(ctx));
    return false;
  }
  m_reference(m_q, m_k, m_v, w, b, scale, 2, 3, want);
  return memcmp(o, want, sizeof o) == 0;
}

#endif
