/* test_pool: attnrt_parallel_for over several thread counts, sizes and
 * grains, and contexts used from several threads at once.  Build with
 * -fsanitize=thread to check for races. */
#include "test_util.h"
#include "test_model.h"

#include <pthread.h>
#include <time.h>

enum { MAX_CHUNKS = 4096 };

/* What one parallel_for saw.  Each row's counter is written only by the
 * chunk that owns it, so overlapping chunks show up as a count of 2 (and as
 * a race under TSan). */
typedef struct trace {
  int *rows;
  int64_t n;
  pthread_mutex_t mu;
  int64_t chunk_begin[MAX_CHUNKS], chunk_end[MAX_CHUNKS];
  pthread_t chunk_thread[MAX_CHUNKS];
  int nchunks;
  const int64_t *want_dims;
  bool bad_args;
  int sleep_us;
} trace;

static void count_rows(void *const *bufs, const int64_t *dims, int64_t begin, int64_t end) {
  trace *tr = bufs[0];
  /* Sleeping first makes a parallel_for that returns early miss rows. */
  if (tr->sleep_us > 0)
    nanosleep(&(struct timespec){0, tr->sleep_us * 1000L}, NULL);
  for (int64_t i = begin; i < end; i++)
    tr->rows[i]++;
  pthread_mutex_lock(&tr->mu);
  if (bufs[1] != (void *)0x1234 || dims != tr->want_dims)
    tr->bad_args = true;
  if (tr->nchunks < MAX_CHUNKS) {
    tr->chunk_begin[tr->nchunks] = begin;
    tr->chunk_end[tr->nchunks] = end;
    tr->chunk_thread[tr->nchunks] = pthread_self();
  }
  tr->nchunks++;
  pthread_mutex_unlock(&tr->mu);
}

static int distinct_threads(const trace *tr) {
  int n = 0;
  for (int i = 0; i < tr->nchunks && i < MAX_CHUNKS; i++) {
    bool seen = false;
    for (int j = 0; j < i; j++)
      seen = seen || pthread_equal(tr->chunk_thread[i], tr->chunk_thread[j]);
    n += !seen;
  }
  return n;
}

/* Runs one parallel_for and checks every row ran once, chunks respected
 * the grain, and the arguments arrived unchanged. */
static bool run_one(attnrt_ctx *ctx, int threads, int64_t n, int64_t grain, trace *tr) {
  static const int64_t dims[2] = {11, 22};
  tr->rows = calloc(n > 0 ? (size_t)n : 1, sizeof *tr->rows);
  tr->n = n;
  tr->nchunks = 0;
  tr->want_dims = dims;
  tr->bad_args = false;
  void *bufs[2] = {tr, (void *)0x1234};
  attnrt_parallel_for(ctx, count_rows, bufs, dims, n, grain);
  bool ok = !tr->bad_args;
  for (int64_t i = 0; i < n; i++)
    ok = ok && tr->rows[i] == 1;
  int64_t g = grain < 1 ? 1 : grain, covered = 0;
  for (int c = 0; c < tr->nchunks && c < MAX_CHUNKS; c++) {
    int64_t len = tr->chunk_end[c] - tr->chunk_begin[c];
    bool last = tr->chunk_end[c] == n;
    ok = ok && len > 0 && (len >= g || last);
    covered += len;
  }
  ok = ok && (n <= 0 || covered == n);
  /* At most about 4 chunks per thread (rounding may add one). */
  ok = ok && tr->nchunks <= 4 * threads + 1;
  if (n > 0 && (threads == 1 || n <= g))
    ok = ok && tr->nchunks == 1 && tr->chunk_begin[0] == 0 && tr->chunk_end[0] == n &&
         pthread_equal(tr->chunk_thread[0], pthread_self());
  if (n <= 0)
    ok = ok && tr->nchunks == 0;
  free(tr->rows);
  return ok;
}

static void test_parallel_for(void) {
  static trace tr;
  pthread_mutex_init(&tr.mu, NULL);
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  const int thread_counts[] = {1, 2, 3, 4, 8, 0};
  const int64_t sizes[] = {0, 1, 7, 100, 1000, 100003};
  const int64_t grains[] = {0, 1, 16, 1000};
  for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
    attnrt_ctx_set_threads(ctx, thread_counts[t]);
    int threads = attnrt_ctx_threads(ctx);
    int bad = 0, runs = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
        runs++;
        if (!run_one(ctx, threads, sizes[s], grains[g], &tr)) {
          bad++;
          printf("     threads %d n %lld grain %lld: wrong rows or chunks (%d chunks)\n", threads,
                 (long long)sizes[s], (long long)grains[g], tr.nchunks);
        }
      }
    check(bad == 0, "threads=%d (asked %d): %d parallel_for calls cover every row once",
          threads, thread_counts[t], runs);
  }

  /* With slow chunks, the workers must really take part. */
  attnrt_ctx_set_threads(ctx, 4);
  tr.sleep_us = 2000;
  bool ok = run_one(ctx, 4, 64, 1, &tr);
  tr.sleep_us = 0;
  check(ok && distinct_threads(&tr) >= 2, "4 threads: slow chunks run on %d threads", distinct_threads(&tr));

  /* Many small calls in a row, changing the thread count between some. */
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    if (i % 500 == 0)
      attnrt_ctx_set_threads(ctx, 2 + i / 500);
    bad += !run_one(ctx, attnrt_ctx_threads(ctx), 37 + i % 50, 1, &tr);
  }
  check(bad == 0, "2000 back-to-back parallel_for calls across thread-count changes");

  /* A NULL ctx or function is tolerated. */
  void *bufs[2] = {&tr, (void *)0x1234};
  attnrt_parallel_for(ctx, NULL, bufs, NULL, 10, 1);
  tr.rows = calloc(5, sizeof *tr.rows);
  tr.nchunks = 0;
  tr.want_dims = NULL;
  tr.bad_args = false;
  attnrt_parallel_for(NULL, count_rows, bufs, NULL, 5, 1);
  check(tr.nchunks == 1 && tr.rows[4] == 1 && !tr.bad_args, "a NULL ctx runs on the caller's thread");
  free(tr.rows);
  attnrt_ctx_free(ctx);
  pthread_mutex_destroy(&tr.mu);
}

/* ---- one context per thread ----------------------------------------------- */

static const float W[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const float BIAS[4] = {0.5f, -0.5f, 0.25f, 0};
static const int32_t SCALE = 2;
static const char *g_weights;

typedef struct worker {
  int id;
  int failures;
  char msg[256];
} worker;

static void *ctx_worker(void *arg) {
  worker *w = arg;
  attnrt_ctx *ctx = attnrt_ctx_new(&m_model);
  if (ctx == NULL || attnrt_ctx_load_weights(ctx, g_weights) != ATTNRT_OK ||
      attnrt_ctx_set_threads(ctx, 1 + w->id % 3) != ATTNRT_OK) {
    snprintf(w->msg, sizeof w->msg, "setup: %s", attnrt_ctx_error(ctx));
    w->failures++;
    attnrt_ctx_free(ctx);
    return NULL;
  }
  enum { TMAX = 97, SMAX = 13 };
  float q[TMAX * 3], k[SMAX * 3], v[SMAX * 3], o[TMAX * 4], want[TMAX * 4];
  unsigned seed = 12345u + (unsigned)w->id;
  for (int iter = 0; iter < 60; iter++) {
    int64_t T = 1 + (iter * 7 + w->id) % TMAX, S = 1 + (iter * 5 + w->id) % SMAX;
    for (int i = 0; i < T * 3; i++)
      q[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0xFF) / 64.0f;
    for (int i = 0; i < S * 3; i++)
      k[i] = v[i] = (float)(i % 5) - 2.0f;
    int64_t dims[2];
    attnrt_tensor in_t[3] = {{ATTNRT_F32, 2, {T, 3}, q}, {ATTNRT_F32, 2, {S, 3}, k}, {ATTNRT_F32, 2, {S, 3}, v}};
    void *in[3] = {q, k, v};
    void *out[1] = {o};
    attnrt_status s = attnrt_bind_dims(ctx, in_t, dims);
    if (s == ATTNRT_OK)
      s = attnrt_run(ctx, in, out, dims);
    m_reference(q, k, v, W, BIAS, SCALE, T, S, want);
    if (s != ATTNRT_OK || memcmp(o, want, (size_t)T * 4 * sizeof *o) != 0) {
      snprintf(w->msg, sizeof w->msg, "iteration %d: %s", iter, attnrt_ctx_error(ctx));
      w->failures++;
    }
  }
  attnrt_ctx_free(ctx);
  return NULL;
}

static void test_ctx_per_thread(void) {
  st_tensor ts[] = {{"linear1.weight", "F32", 2, {4, 3}, W, sizeof W},
                    {"linear1.bias", "F32", 1, {4}, BIAS, sizeof BIAS},
                    {"scale", "I32", 0, {0}, &SCALE, 4}};
  g_weights = tpath("w.safetensors");
  write_st(g_weights, ts, 3);
  enum { N = 4 };
  pthread_t th[N];
  worker ws[N];
  for (int i = 0; i < N; i++) {
    ws[i] = (worker){i, 0, ""};
    if (pthread_create(&th[i], NULL, ctx_worker, &ws[i]) != 0) {
      ws[i].failures = 1;
      snprintf(ws[i].msg, sizeof ws[i].msg, "pthread_create failed");
      th[i] = pthread_self();
    }
  }
  for (int i = 0; i < N; i++)
    if (!pthread_equal(th[i], pthread_self()))
      pthread_join(th[i], NULL);
  for (int i = 0; i < N; i++)
    check(ws[i].failures == 0, "thread %d: own ctx, own weights, 60 runs match the reference %s",
          i, ws[i].msg);
}

int main(void) {
  tmpdir_make("pool");
  test_parallel_for();
  test_ctx_per_thread();
  tmpdir_remove();
  return test_finish("test_pool");
}
