/* pool.c: a context's persistent worker threads and attnrt_parallel_for.
 *
 * One job at a time: a context is used by one thread at a time, so the
 * caller that posts a job is the only one waiting for it.  Every shared field
 * is read and written under the mutex; only the kernel runs unlocked.  The
 * kernels are coarse (whole row ranges), so a mutex per chunk costs nothing
 * measurable and keeps the pool obviously race-free. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

/* Chunks handed out per participating thread: enough to even out uneven
 * rows, few enough that locking stays negligible. */
#define CHUNKS_PER_THREAD 4

struct attnrt_pool {
  pthread_mutex_t mu;
  pthread_cond_t work_cv;   /* a job was posted, or stop */
  pthread_cond_t done_cv;   /* the last rows of the job finished */
  pthread_t *threads;
  int nworkers;
  bool stop;
  /* The current job.  next == n means nothing is left to hand out. */
  attnrt_kernel_fn fn;
  void *const *bufs;
  const int64_t *dims;
  int64_t n, chunk, next;
  int64_t rows_left;        /* rows handed out or not yet finished */
};

/* Called with mu held; returns with mu held once nothing is left to take. */
static void run_chunks(struct attnrt_pool *p) {
  while (p->next < p->n) {
    int64_t begin = p->next;
    int64_t end = p->n - begin > p->chunk ? begin + p->chunk : p->n;
    attnrt_kernel_fn fn = p->fn;
    void *const *bufs = p->bufs;
    const int64_t *dims = p->dims;
    p->next = end;
    pthread_mutex_unlock(&p->mu);
    fn(bufs, dims, begin, end);
    pthread_mutex_lock(&p->mu);
    p->rows_left -= end - begin;
    if (p->rows_left == 0)
      pthread_cond_signal(&p->done_cv);
  }
}

static void *worker_main(void *arg) {
  struct attnrt_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    if (p->next < p->n)
      run_chunks(p);
    else
      pthread_cond_wait(&p->work_cv, &p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void join_workers(struct attnrt_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nworkers; i++)
    pthread_join(p->threads[i], NULL);
  p->nworkers = 0;
}

struct attnrt_pool *attnrt_pool_new(int workers) {
  struct attnrt_pool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->threads = calloc(workers > 0 ? (size_t)workers : 1, sizeof *p->threads);
  if (p->threads == NULL) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  /* Workers start with every signal blocked, so the host's signal handlers
   * keep running on the host's own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < workers; i++) {
    if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
      break; /* fewer workers is slower, not wrong */
    p->nworkers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return p;
}

void attnrt_pool_free(struct attnrt_pool *p) {
  if (p == NULL)
    return;
  join_workers(p);
  pthread_cond_destroy(&p->done_cv);
  pthread_cond_destroy(&p->work_cv);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
}

int attnrt_pool_workers(const struct attnrt_pool *p) {
  return p ? p->nworkers : 0;
}

void attnrt_pool_run(struct attnrt_pool *p, attnrt_kernel_fn fn, void *const *bufs,
                   const int64_t *dims, int64_t n, int64_t chunk) {
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->bufs = bufs;
  p->dims = dims;
  p->n = n;
  p->chunk = chunk;
  p->next = 0;
  p->rows_left = n;
  pthread_cond_broadcast(&p->work_cv);
  run_chunks(p);
  while (p->rows_left > 0)
    pthread_cond_wait(&p->done_cv, &p->mu);
  /* Leave no pointers into the caller's frame behind. */
  p->fn = NULL;
  p->bufs = NULL;
  p->dims = NULL;
  p->n = p->next = 0;
  pthread_mutex_unlock(&p->mu);
}

void attnrt_parallel_for(struct attnrt_ctx *ctx, attnrt_kernel_fn fn,
                          void *const *bufs, const int64_t *dims,
                          int64_t n, int64_t grain) {
  if (fn == NULL || n <= 0)
    return;
  if (grain < 1)
    grain = 1;
  int threads = ctx != NULL ? ctx->threads : 1;
  if (threads <= 1 || n <= grain) {
    fn(bufs, dims, 0, n);
    return;
  }
  if (ctx->pool == NULL)
    ctx->pool = attnrt_pool_new(threads - 1);
  int participants = attnrt_pool_workers(ctx->pool) + 1;
  if (participants == 1) {
    fn(bufs, dims, 0, n);
    return;
  }
  int64_t pieces = (int64_t)participants * CHUNKS_PER_THREAD;
  int64_t chunk = n / pieces + (n % pieces != 0);
  if (chunk < grain)
    chunk = grain;
  attnrt_pool_run(ctx->pool, fn, bufs, dims, n, chunk);
}
