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
