/* bench_util.h: the small pieces every part of the benchmark shares:
 * a clock, a seeded random source, float buffers, and the comparison that
 * decides whether two implementations computed the same thing. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Busy-loop on every CPU for about `seconds`: an idle vCPU needs a few
 * hundred milliseconds of load to reach its full clock, and the first timed
 * repetition must not pay for that. */
void bench_spin(double seconds);

/* The best of a few runs of independent vector FMAs, one thread, in
 * GFLOP/s (2 per lane): the machine's single-core FP32 peak, for scale. */
double bench_peak_gflops(void);

/* A small deterministic generator (splitmix64), so every run and every
 * machine draws the same inputs and weights. */
typedef struct { uint64_t s; } bench_rng;
void bench_rng_seed(bench_rng *r, uint64_t seed);
/* Uniform in [-scale, scale). */
float bench_uniform(bench_rng *r, float scale);

/* A 64-byte aligned float buffer (exits on failure: a benchmark that cannot
 * allocate has nothing useful to say).  bench_rand fills it uniformly. */
float *bench_alloc(size_t n);
float *bench_rand(bench_rng *r, size_t n, float scale);

/* Compare `got` with `want` (the attnc output).  An element passes when
 * |got - want| <= atol + rtol * |want|; returns the largest |got - want|
 * and stores whether every element passed in *ok.  NaN never passes. */
double bench_maxdiff(const float *got, const float *want, size_t n,
                     double atol, double rtol, int *ok);

/* Largest |x|, to set an absolute tolerance relative to the data's scale. */
double bench_maxabs(const float *x, size_t n);

/* Median of n values (sorts them in place). */
double bench_median(double *v, int n);

#endif
