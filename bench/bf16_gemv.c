/* bf16_gemv.c: is AVX-512 BF16's vdpbf16ps worth it for attnc's bf16 GEMV?
 * (issue 17; bench/README.md, "bf16 weights").  One row x[K] times a
 * weight matrix W[K, N] in bf16, on one thread, two ways:
 *
 *   widen   attnc's kernel (compiler/codegen/gemm.c, gemv_shared): panels
 *           of 32 columns, K rows of 32 bf16; each row is loaded as two
 *           vectors widened to f32 (zero extend, shift by 16) and
 *           multiplied by x[k] in f32 (FMA), 4 k's in flight;
 *   dpbf16  vdpbf16ps: panels of 16 columns holding pairs of k (W[2p, j],
 *           W[2p+1, j]) side by side; x is rounded to bf16 too, and one
 *           instruction does 32 products of a pair row, 4 pair rows in
 *           flight;
 *   pairs   the layout of dpbf16, widened to f32 by a shift and a mask (x
 *           stays f32): one 64-byte load per 32 weights.
 *
 *   cc -O3 -march=native bench/bf16_gemv.c -o bf16_gemv -lm && ./bf16_gemv
 *
 * Prints, for weights that stay in L2 (K = N = 512, 0.5 MB), in L3 (2048,
 * 8 MB) and in memory (8192, 134 MB): GB/s of weights read by each (2
 * FLOPs per 2 bytes: the same number in GFLOP/s), the best of 5 rounds,
 * and the largest difference from widen's result relative to sum |w x|
 * (dpbf16 also rounds x; pairs only adds in another order).  Needs an x86
 * CPU with avx512bf16 (znver4/5, Sapphire Rapids); elsewhere it says so. */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint16_t to_bf16(float f) {   /* nearest even, as the runtime */
  uint32_t b;
  memcpy(&b, &f, 4);
  b += 0x7FFFu + ((b >> 16) & 1u);
  return (uint16_t)(b >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t b = (uint32_t)h << 16;
  float f;
  memcpy(&f, &b, 4);
  return f;
}

#if defined(__AVX512BF16__)
/* attnc's layout and loop: panel p at p*K*32, row k of it at k*32 */
static void gemv_widen(const float *x, const uint16_t *w, float *y, int K, int N) {
  for (int p = 0; p < N / 32; p++) {
    const uint16_t *b = w + (size_t)p * K * 32;
    __m512 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 4)
      for (int u = 0; u < 4; u++) {
        __m512 a = _mm512_set1_ps(x[k + u]);
        for (int v = 0; v < 2; v++) {
          __m256i h = _mm256_loadu_si256((const __m256i *)(b + (size_t)(k + u) * 32 + v * 16));
          __m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
          acc[u * 2 + v] = _mm512_fmadd_ps(a, f, acc[u * 2 + v]);
        }
      }
    for (int v = 0; v < 2; v++)
      _mm512_storeu_ps(y + p * 32 + v * 16,
                       _mm512_add_ps(_mm512_add_ps(acc[v], acc[2 + v]), _mm512_add_ps(acc[4 + v], acc[6 + v])));
  }
}

/* pairs of k: panel p (16 columns) at p*K*16, pair row q at q*32 */
static void gemv_dp(const uint16_t *xb, const uint16_t *w, float *y, int K, int N) {
  const uint32_t *xp = (const uint32_t *)xb;
  for (int p = 0; p < N / 16; p++) {
    const uint16_t *b = w + (size_t)p * K * 16;
    __m512 acc[4];
    for (int i = 0; i < 4; i++) acc[i] = _mm512_setzero_ps();
    for (int q = 0; q < K / 2; q += 4)
      for (int u = 0; u < 4; u++) {
        __m512bh a = (__m512bh)_mm512_set1_epi32((int)xp[q + u]);
        __m512bh bv = (__m512bh)_mm512_loadu_si512((const void *)(b + (size_t)(q + u) * 32));
        acc[u] = _mm512_dpbf16_ps(acc[u], a, bv);
      }
    _mm512_storeu_ps(y + p * 16, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
}

/* the pairs layout of gemv_dp, widened in f32 (no rounding of x): a pair
 * row's 32-bit lanes hold (W[2p, j], W[2p+1, j]): W[2p, j] is the lane
 * shifted left by 16, W[2p+1, j] the lane with its low half cleared */
static void gemv_pairs(const float *x, const uint16_t *w, float *y, int K, int N) {
  const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
  for (int p = 0; p < N / 16; p++) {
    const uint16_t *b = w + (size_t)p * K * 16;
    __m512 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm512_setzero_ps();
    for (int q = 0; q < K / 2; q += 4)
      for (int u = 0; u < 4; u++) {
        __m512i v = _mm512_loadu_si512((const void *)(b + (size_t)(q + u) * 32));
        acc[2 * u] = _mm512_fmadd_ps(_mm512_set1_ps(x[2 * (q + u)]), _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), acc[2 * u]);
        acc[2 * u + 1] = _mm512_fmadd_ps(_mm512_set1_ps(x[2 * (q + u) + 1]), _mm512_castsi512_ps(_mm512_and_si512(v, hi)),
                                         acc[2 * u + 1]);
      }
    __m512 s = _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) s = _mm512_add_ps(s, acc[i]);
    _mm512_storeu_ps(y + p * 16, s);
  }
}

static void run(int K) {
  int N = K;
  size_t n = (size_t)K * N;
  float *wf = malloc(n * 4), *x = malloc((size_t)K * 4), *y1 = malloc((size_t)N * 4), *y2 = malloc((size_t)N * 4);
  float *y3 = malloc((size_t)N * 4);
  uint16_t *wa = aligned_alloc(64, n * 2), *wd = aligned_alloc(64, n * 2), *xb = aligned_alloc(64, (size_t)K * 2);
  srand(17);
  for (size_t i = 0; i < n; i++) wf[i] = ((float)rand() / RAND_MAX * 2 - 1) / sqrtf((float)K);
  for (int k = 0; k < K; k++) x[k] = (float)rand() / RAND_MAX * 2 - 1, xb[k] = to_bf16(x[k]);
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) {
      uint16_t h = to_bf16(wf[(size_t)k * N + j]);
      wa[(size_t)(j / 32) * K * 32 + (size_t)k * 32 + j % 32] = h;
      wd[(size_t)(j / 16) * K * 16 + (size_t)(k / 2) * 32 + (j % 16) * 2 + k % 2] = h;
    }
  double best[3] = {1e9, 1e9, 1e9};
  int reps = K <= 2048 ? 2000 : 20;
  for (int round = 0; round < 5; round++)
    for (int m = 0; m < 3; m++) {
      double t0 = now();
      for (int r = 0; r < reps; r++) {
        if (m == 0) gemv_widen(x, wa, y1, K, N);
        else if (m == 1) gemv_dp(xb, wd, y2, K, N);
        else gemv_pairs(x, wd, y3, K, N);
      }
      double t = (now() - t0) / reps;
      if (t < best[m]) best[m] = t;
    }
  double worst = 0, worst3 = 0;
  for (int j = 0; j < N; j++) {
    double s = 0;
    for (int k = 0; k < K; k++) s += fabs((double)from_bf16(wa[(size_t)(j / 32) * K * 32 + (size_t)k * 32 + j % 32]) * x[k]);
    worst = fmax(worst, fabs((double)y1[j] - y2[j]) / s);
    worst3 = fmax(worst3, fabs((double)y1[j] - y3[j]) / s);
  }
  printf("K = N = %-5d %6.1f MB  GB/s of weights: widen %6.1f  dpbf16 %6.1f  pairs %6.1f   time vs widen: dpbf16 %.2f "
         "pairs %.2f   max |diff| / sum|wx| vs widen: dpbf16 %.1e, pairs %.1e\n",
         K, n * 2 / 1e6, n * 2 / best[0] / 1e9, n * 2 / best[1] / 1e9, n * 2 / best[2] / 1e9, best[1] / best[0],
         best[2] / best[0], worst, worst3);
  free(wf), free(x), free(y1), free(y2), free(y3), free(wa), free(wd), free(xb);
}
#endif

int main(void) {
#if defined(__AVX512BF16__)
  if (!__builtin_cpu_supports("avx512bf16")) {
    printf("bf16_gemv: this CPU has no avx512bf16\n");
    return 0;
  }
  run(512);
  run(2048);
  run(8192);
  return 0;
#else
  printf("bf16_gemv: compiled without AVX-512 BF16 (-march=native on a CPU that has it)\n");
  return 0;
#endif
}
