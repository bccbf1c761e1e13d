/* Fork-join pool: parallel_for publishes a job, every thread (the caller too) takes chunks, and
 * the caller waits for the last chunk.
 *
 * Thread t (the caller is 0, the workers 1..) starts on the t-th of as many contiguous ranges
 * of the chunks as there are threads, and when it has run out takes the rest of the others'
 * (each range has its own counter, advanced by its owner and by thieves alike). Kernels that
 * order their items alike (the blocked ones: rows of the image first) then give a thread the
 * same part of consecutive layers, and it reads what it wrote itself. That matters where the
 * threads' cores share no cache: on the shared two-vCPU development machine the
 * vCPUs spend spells on different dies (a cache line crosses between them in 170-200 ns
 * instead of 25-45), and MNASNet at two threads took 6.6 ms in those spells with chunks handed
 * out first-come from one counter, 5.7 with ranges (4.2 and 4.1 in the other spells).
 *
 * Between jobs a worker spins for a short while (SPIN_NS) watching for the next one before it
 * sleeps on a condition variable, and the caller likewise spins before it sleeps waiting for
 * the workers; both yield the core now and then while they spin, so that on a machine busier
 * than its cores a spinning thread does not keep a preempted one from running. A model runs one
 * parallel kernel after another, often a fraction of a millisecond each; waking a sleeping thread
 * through the kernel costs tens of microseconds on a virtual machine, which on two threads ate the
 * whole gain of the second one. The spin ends early when a job arrives, so an idle pool sleeps
 * after SPIN_NS. */
#include "devices/cpu/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* How long a thread spins for the next job (a worker) or for the workers to finish (the
 * caller) before sleeping. */
#define SPIN_NS 200000

struct cpu_pool {
  size_t threads; /* including the caller */
  pthread_t *workers;
  size_t n_workers;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  pthread_cond_t done;
  atomic_flag busy; /* held by the run that owns the pool right now */
  /* The current job: written under mu before generation is advanced; read under mu. */
  _Atomic uint64_t generation;
  void (*fn)(void *, size_t, size_t);
  void *arg;
  size_t n, chunk, n_chunks;
  /* Changed under mu; read without it while spinning. */
  atomic_size_t chunks_done;
  atomic_size_t active; /* workers inside the current job; the caller waits for 0 so that
                           no worker can carry an old job into the next one */
  atomic_bool stop;
  struct pool_cursor *cursor; /* one per thread */
  struct pool_worker *self;   /* the workers' arguments */
};

/* A thread's range of the current job's chunks: [next, end), next advanced by the owner and
 * by thieves alike. On its own cache line, so that a thread taking its own chunks touches no
 * line another thread writes. */
struct pool_cursor {
  _Alignas(64) atomic_size_t next;
  size_t end;
};

struct pool_worker {
  cpu_pool *pool;
  size_t index; /* 1.. (the caller is 0) */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t take_chunks(void (*fn)(void *, size_t, size_t), void *arg, size_t n, size_t chunk,
                          atomic_size_t *next, size_t limit) {
  size_t finished = 0;
  for (;;) {
    size_t c = atomic_fetch_add(next, 1);
    if (c >= limit)
      break;
    size_t begin = c * chunk;
    size_t end = begin + chunk < n ? begin + chunk : n;
    fn(arg, begin, end);
    finished++;
  }
  return finished;
}

static void run_chunks(cpu_pool *p, void (*fn)(void *, size_t, size_t), void *arg, size_t n,
                       size_t chunk, size_t n_chunks, size_t self) {
  size_t finished = 0;
  for (size_t k = 0; k < p->threads; k++) {
    struct pool_cursor *c = &p->cursor[(self + k) % p->threads];
    finished += take_chunks(fn, arg, n, chunk, &c->next, c->end);
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->chunks_done, finished);
  if (self)
    atomic_fetch_sub(&p->active, 1);
  if (atomic_load(&p->active) == 0)
    pthread_cond_broadcast(&p->done);
  pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg) {
  struct pool_worker *w = arg;
  cpu_pool *p = w->pool;
  uint64_t seen = 0;
  for (;;) {
    /* Spin for a while: the next kernel usually follows within microseconds. */
    uint64_t t0 = now_ns();
    for (unsigned i = 1; atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
                         !atomic_load_explicit(&p->stop, memory_order_relaxed);
         i++) {
      cpu_relax();
      if ((i & 255) == 0) {
        if (now_ns() - t0 > SPIN_NS)
          break;
        sched_yield(); /* on a machine with more threads than cores, let the others run */
      }
    }
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
      pthread_cond_wait(&p->wake, &p->mu);
    if (atomic_load(&p->stop)) {
      pthread_mutex_unlock(&p->mu);
      break;
    }
    seen = atomic_load(&p->generation);
    void (*fn)(void *, size_t, size_t) = p->fn;
    void *farg = p->arg;
    size_t n = p->n, chunk = p->chunk, n_chunks = p->n_chunks;
    atomic_fetch_add(&p->active, 1);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, fn, farg, n, chunk, n_chunks, w->index);
  }
  return NULL;
}

cpu_pool *cpu_pool_create(size_t threads) {
  if (threads <= 1)
    return NULL;
  cpu_pool *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->threads = threads;
  /* An adaptive mutex spins a little before it sleeps: a worker that sees a new job takes mu
   * while the caller may still hold it for the broadcast, and a plain mutex then put it to
   * sleep in the kernel and woke it after the caller's unlock, microseconds later (a
   * parallel_for of two 12-microsecond items: 14.7-15.6 us with a plain mutex, 12.8-12.9 with
   * an adaptive one; one item alone on one thread, 12.3). */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
#ifdef PTHREAD_MUTEX_ADAPTIVE_NP
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
  pthread_mutex_init(&p->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_flag_clear(&p->busy);
  atomic_init(&p->generation, 0);
  atomic_init(&p->chunks_done, 0);
  atomic_init(&p->active, 0);
  atomic_init(&p->stop, false);
  p->workers = calloc(threads - 1, sizeof *p->workers);
  p->self = calloc(threads - 1, sizeof *p->self);
  p->cursor = aligned_alloc(64, threads * sizeof *p->cursor);
  if (!p->workers || !p->self || !p->cursor) {
    cpu_pool_destroy(p);
    return NULL;
  }
  for (size_t i = 0; i + 1 < threads; i++) {
    p->self[i] = (struct pool_worker){p, i + 1};
    if (pthread_create(&p->workers[i], NULL, worker_main, &p->self[i]) != 0)
      break;
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
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->stop, true);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < p->n_workers; i++)
    pthread_join(p->workers[i], NULL);
  free(p->workers);
  free(p->self);
  free(p->cursor);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

size_t cpu_thread_count(const cpu_ctx *ctx) { return ctx && ctx->pool ? ctx->pool->threads : 1; }

/* A scratch block: this header, then the memory handed out, 64 bytes in. */
struct cpu_scratch {
  size_t bytes;
};
enum { SCRATCH_HEAD = 64 };

void *cpu_scratch_take(cpu_ctx *ctx, size_t bytes, bool *fresh) {
  cpu_scratch *b = ctx && ctx->scratch ? atomic_exchange(ctx->scratch, NULL) : NULL;
  *fresh = false;
  if (b && b->bytes >= bytes)
    return (char *)b + SCRATCH_HEAD;
  free(b);
  if (bytes > SIZE_MAX - SCRATCH_HEAD - 63)
    return NULL;
  bytes = (bytes + 63) & ~(size_t)63;
  void *p = NULL;
  if (posix_memalign(&p, 64, SCRATCH_HEAD + bytes) != 0)
    return NULL;
  b = p;
  b->bytes = bytes;
  *fresh = true;
  return (char *)b + SCRATCH_HEAD;
}

void cpu_scratch_give(cpu_ctx *ctx, void *p) {
  if (!p)
    return;
  cpu_scratch *b = (cpu_scratch *)((char *)p - SCRATCH_HEAD);
  if (!ctx || !ctx->scratch) {
    free(b);
    return;
  }
  /* The slot keeps the larger of what it holds and b: a small block given last (a GEMM's on
   * one of several threads at once) must not push out the large one the next big layer needs. */
  for (;;) {
    size_t bytes = b->bytes; /* read while b is ours: once in the slot another may take it */
    cpu_scratch *old = atomic_exchange(ctx->scratch, b);
    if (!old || old->bytes <= bytes) {
      free(old);
      return;
    }
    cpu_scratch *expect = b;
    if (atomic_compare_exchange_strong(ctx->scratch, &expect, old)) {
      free(b);
      return;
    }
    b = old; /* b was taken meanwhile and is another's now: give old in its place */
  }
}

void cpu_scratch_free(cpu_scratch *_Atomic *slot) { free(atomic_exchange(slot, NULL)); }

/* The heaviest thread's share of n items cut in chunks of c and taken one chunk at a time:
 * the chunks come out as one thread's share more than another's at most (the last, partial
 * chunk goes to a thread with fewer). */
static size_t pool_share(size_t n, size_t c, size_t threads) {
  size_t chunks = (n + c - 1) / c;
  return (chunks + threads - 1) / threads * c;
}

size_t cpu_pool_chunk(size_t n, size_t grain, size_t threads) {
  if (grain == 0)
    grain = 1;
  if (threads <= 1 || n <= grain)
    return n > grain ? n : grain;
  size_t even = (n + threads - 1) / threads; /* no share can be smaller */
  size_t best = grain, best_share = SIZE_MAX;
  /* From four chunks a thread to eight, and one item a chunk when the items are few; then,
   * where the grain left the shares uneven, fewer chunks, each taken only if clearly better. */
  for (size_t k = 4 * threads; k <= 8 * threads + 1 && best_share > even; k++) {
    size_t kk = k <= 8 * threads ? k : n <= 16 * threads ? n : 0;
    if (kk == 0)
      break;
    size_t c = (n + kk - 1) / kk;
    c = c < grain ? grain : c;
    size_t share = pool_share(n, c, threads);
    if (share < best_share)
      best = c, best_share = share;
  }
  for (size_t k = 4 * threads - 1; k >= threads && best_share > even; k--) {
    size_t c = (n + k - 1) / k;
    c = c < grain ? grain : c;
    size_t share = pool_share(n, c, threads);
    if (share * 50 < best_share * 49)
      best = c, best_share = share;
  }
  return best;
}

size_t cpu_even_items(size_t per, size_t N, size_t threads, size_t most) {
  if (threads <= 1 || N == 0)
    return per;
  for (size_t k = per; k <= most && k < per + threads; k++)
    if (N * k % threads == 0)
      return k;
  return per;
}

void cpu_parallel_for(cpu_ctx *ctx, size_t n, size_t grain,
                      void (*fn)(void *arg, size_t begin, size_t end), void *arg) {
  if (n == 0)
    return;
  if (grain == 0)
    grain = 1;
  cpu_pool *p = ctx ? ctx->pool : NULL;
  if (!p || n <= grain || atomic_flag_test_and_set(&p->busy)) {
    fn(arg, 0, n);
    return;
  }
  size_t chunk = cpu_pool_chunk(n, grain, p->threads);
  size_t n_chunks = (n + chunk - 1) / chunk;

  pthread_mutex_lock(&p->mu);
  /* A worker that came late for the previous job may still hold it; let it leave first. */
  while (atomic_load(&p->active) > 0)
    pthread_cond_wait(&p->done, &p->mu);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  p->n_chunks = n_chunks;
  atomic_store(&p->chunks_done, 0);
  for (size_t t = 0; t < p->threads; t++) {
    atomic_store(&p->cursor[t].next, n_chunks * t / p->threads);
    p->cursor[t].end = n_chunks * (t + 1) / p->threads;
  }
  atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);

  run_chunks(p, fn, arg, n, chunk, n_chunks, 0);

  /* Spin while the workers finish their last chunks, then sleep. */
  uint64_t t0 = now_ns();
  for (unsigned i = 1; atomic_load(&p->chunks_done) < n_chunks || atomic_load(&p->active) > 0;
       i++) {
    cpu_relax();
    if ((i & 255) == 0) {
      if (now_ns() - t0 > SPIN_NS)
        break;
      sched_yield(); /* a worker that was preempted may need this core to finish */
    }
  }
  pthread_mutex_lock(&p->mu);
  while (atomic_load(&p->chunks_done) < n_chunks || atomic_load(&p->active) > 0)
    pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
  atomic_flag_clear(&p->busy);
}
