/* bench_util.c: see bench_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *spin_thread(void *arg) {
  double end = *(const double *)arg;
  volatile double x = 1.0;
  while (bench_now() < end)
    for (int i = 0; i < 10000; i++) x = x * 1.0000001 + 1e-9;
  return NULL;
}

/* Every online CPU spins, not only this thread's: the attnc-2T rows need
 * the second CPU at its clock too. */
void bench_spin(double seconds) {
  double end = bench_now() + seconds;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > 64) n = 64;
  pthread_t th[64];
  int started = 0;
  for (long i = 1; i < n; i++)
    if (pthread_create(&th[started], NULL, spin_thread, &end) == 0) started++;
  spin_thread(&end);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}

void bench_rng_seed(bench_rng *r, uint64_t seed) { r->s = seed; }

static uint64_t splitmix64(bench_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

float bench_uniform(bench_rng *r, float scale) {
  /* 24 random bits -> [0, 1) exactly representable in a float */
  float u = (float)(splitmix64(r) >> 40) * (1.0f / 16777216.0f);
  return (2.0f * u - 1.0f) * scale;
}

float *bench_alloc(size_t n) {
  size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  float *p = aligned_alloc(64, bytes ? bytes : 64);
  if (!p) {
    fprintf(stderr, "bench: out of memory allocating %zu floats\n", n);
    exit(1);
  }
  return p;
}

float *bench_rand(bench_rng *r, size_t n, float scale) {
  float *p = bench_alloc(n);
  for (size_t i = 0; i < n; i++) p[i] = bench_uniform(r, scale);
  return p;
}

double bench_maxdiff(const float *got, const float *want, size_t n,
                     double atol, double rtol, int *ok) {
  double worst = 0.0;
  *ok = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= atol + rtol * fabs((double)want[i]))) { /* NaN fails too */
      *ok = 0;
      if (isnan(d)) d = INFINITY;
    }
    if (d > worst) worst = d;
  }
  return worst;
}

double bench_maxabs(const float *x, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
  return m;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* 12 independent vector FMA chains (enough to cover a 4-cycle latency on
 * 2 FMA ports, with room) at the widest vector -march=native targets. */
#if defined(__AVX512F__)
enum { PEAK_LANES = 16 };
#elif defined(__AVX__)
enum { PEAK_LANES = 8 };
#else
enum { PEAK_LANES = 4 };
#endif
typedef float peak_vec __attribute__((vector_size(PEAK_LANES * 4)));

/* run.sh compiles with -std=c11, under which GCC does not contract a * b
 * + c into an FMA: ask for it here, or the probe times mul + add. */
__attribute__((optimize("fp-contract=fast"))) double bench_peak_gflops(void) {
  peak_vec m, a;
  for (int i = 0; i < PEAK_LANES; i++) {
    m[i] = 0.9999999f;
    a[i] = 1e-7f;
  }
  peak_vec c0 = m, c1 = m + a, c2 = c1 + a, c3 = c2 + a, c4 = c3 + a, c5 = c4 + a;
  peak_vec c6 = c5 + a, c7 = c6 + a, c8 = c7 + a, c9 = c8 + a, c10 = c9 + a, c11 = c10 + a;
  long iters = 10000000;
  double best = 0;
  for (int rep = 0; rep < 10; rep++) {
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
      c0 = c0 * m + a; c1 = c1 * m + a; c2 = c2 * m + a; c3 = c3 * m + a;
      c4 = c4 * m + a; c5 = c5 * m + a; c6 = c6 * m + a; c7 = c7 * m + a;
      c8 = c8 * m + a; c9 = c9 * m + a; c10 = c10 * m + a; c11 = c11 * m + a;
      /* every chain must stay: the compiler may not drop or fold any */
      __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
      __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
    }
    double s = bench_now() - t0;
    double g = 2.0 * PEAK_LANES * 12 * (double)iters / s * 1e-9;
    if (g > best) best = g;
  }
  peak_vec sum = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
  if (sum[0] == 12345.0f) fprintf(stderr, "%f\n", (double)sum[0]);
  return best;
}
