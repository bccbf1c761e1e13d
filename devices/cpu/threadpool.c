/* Fork-join pool: workers sleep on a condition variable; parallel_for publishes a job, every
 * thread (the caller too) takes chunks from an atomic counter, and the caller waits for the
 * last chunk. */
#include "devices/cpu/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct cpu_pool {
  size_t threads;          /* including the caller */
  pthread_t *workers;
  size_t n_workers;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  pthread_cond_t done;
  atomic_flag busy;        /* held by the run that owns the pool right now */
  /* The current job, guarded by mu while published. */
  uint64_t generation;
  void (*fn)(void *, size_t, size_t);
  void *arg;
  size_t n, chunk, n_chunks;
  atomic_size_t next_chunk;
  size_t chunks_done;
  size_t active;           /* workers inside the current job; the caller waits for 0 so that
                              no worker can carry an old job into the next one */
  bool stop;
};

static void run_chunks(cpu_pool *p, void (*fn)(void *, size_t, size_t), void *arg, size_t n,
                       size_t chunk, size_t n_chunks, bool is_worker) {
  size_t finished = 0;
  for (;;) {
    size_t c = atomic_fetch_add(&p->next_chunk, 1);
    if (c >= n_chunks) break;
    size_t begin = c * chunk;
    size_t end = begin + chunk < n ? begin + chunk : n;
    fn(arg, begin, end);
    finished++;
  }
  pthread_mutex_lock(&p->mu);
  p->chunks_done += finished;
  if (is_worker) p->active--;
  if (p->active == 0) pthread_cond_broadcast(&p->done);
  pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg) {
  cpu_pool *p = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    void (*fn)(void *, size_t, size_t) = p->fn;
    void *farg = p->arg;
    size_t n = p->n, chunk = p->chunk, n_chunks = p->n_chunks;
    p->active++;
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, fn, farg, n, chunk, n_chunks, true);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

cpu_pool *cpu_pool_create(size_t threads) {
  if (threads <= 1) return NULL;
  cpu_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_flag_clear(&p->busy);
  p->workers = calloc(threads - 1, sizeof *p->workers);
  if (!p->workers) {
    cpu_pool_destroy(p);
    return NULL;
  }
  for (size_t i = 0; i + 1 < threads; i++) {
    if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) break;
    p->n_workers++;
  }
  if (p->n_workers == 0) {
    cpu_pool_destroy(p);
    return NULL;
  }
  p->threads = p->n_workers + 1;
  return p;
}

void cpu_pool_destroy(cpu_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
  free(p->workers);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

size_t cpu_thread_count(const cpu_ctx *ctx) {
  return ctx && ctx->pool ? ctx->pool->threads : 1;
}

void cpu_parallel_for(cpu_ctx *ctx, size_t n, size_t grain,
                      void (*fn)(void *arg, size_t begin, size_t end), void *arg) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  cpu_pool *p = ctx ? ctx->pool : NULL;
  if (!p || n <= grain || atomic_flag_test_and_set(&p->busy)) {
    fn(arg, 0, n);
    return;
  }
  /* A few chunks per thread balances uneven work without much dispatch overhead. */
  size_t n_chunks = p->threads * 4;
  size_t chunk = (n + n_chunks - 1) / n_chunks;
  if (chunk < grain) chunk = grain;
  n_chunks = (n + chunk - 1) / chunk;

  pthread_mutex_lock(&p->mu);
  /* A worker that woke late for the previous job may still hold it; let it leave first. */
  while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  p->n_chunks = n_chunks;
  p->chunks_done = 0;
  atomic_store(&p->next_chunk, 0);
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);

  run_chunks(p, fn, arg, n, chunk, n_chunks, false);

  pthread_mutex_lock(&p->mu);
  while (p->chunks_done < n_chunks || p->active > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
  atomic_flag_clear(&p->busy);
}
