/* The CPU plugin's thread pool: every index visited exactly once, for many sizes, grains and
 * thread counts, including two callers racing for one pool; each thread starting on its own
 * range of the items, and taking another's when it runs out. And the scratch slot: it keeps the
 * largest block given back, whatever the order and however many threads give at once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "devices/cpu/threadpool.h"
#include "tests/harness.h"

typedef struct visit {
  atomic_int *hits;
} visit;

static void mark(void *arg, size_t begin, size_t end) {
  visit *v = arg;
  for (size_t i = begin; i < end; i++) atomic_fetch_add(&v->hits[i], 1);
}

static void check_once(cpu_ctx *ctx, size_t n, size_t grain) {
  atomic_int *hits = calloc(n + 1, sizeof *hits);
  visit v = {hits};
  cpu_parallel_for(ctx, n, grain, mark, &v);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(atomic_load(&hits[i]) == 1, "index %zu of %zu visited %d times", i, n,
                  atomic_load(&hits[i]));
  free(hits);
}

START_TEST(covers_every_index_once) {
  size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 4097};
  size_t grains[] = {0, 1, 3, 100};
  for (size_t threads = 1; threads <= 4; threads++) {
    cpu_pool *pool = cpu_pool_create(threads);
    ck_assert(threads == 1 ? pool == NULL : pool != NULL);
    cpu_ctx ctx = {.pool = pool};
    ck_assert_uint_eq(cpu_thread_count(&ctx), threads);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
        for (int rep = 0; rep < 20; rep++) check_once(&ctx, sizes[s], grains[g]);
    cpu_pool_destroy(pool);
  }
}
END_TEST

/* The heaviest thread's share when chunks of c are taken one at a time. */
static size_t share_of(size_t n, size_t c, size_t threads) {
  size_t chunks = (n + c - 1) / c;
  return (chunks + threads - 1) / threads * c;
}

/* cpu_pool_chunk against the rule it replaced (a quarter of a thread's items, rounded up, at
 * least the grain): never a heavier share, and an even one whenever the items are few and the
 * grain one; and by hand, shares the old rule made uneven. */
START_TEST(chunks_share_evenly) {
  size_t grains[] = {1, 2, 3, 7, 10, 146};
  for (size_t threads = 2; threads <= 4; threads++)
    for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
      for (size_t n = grains[g] + 1; n <= 1200; n++) {
        size_t grain = grains[g], c = cpu_pool_chunk(n, grain, threads);
        size_t old = (n + 4 * threads - 1) / (4 * threads);
        old = old < grain ? grain : old;
        ck_assert_msg(c >= grain && c <= n, "n %zu grain %zu threads %zu: chunk %zu", n, grain,
                      threads, c);
        ck_assert_msg(share_of(n, c, threads) <= share_of(n, old, threads),
                      "n %zu grain %zu threads %zu: share %zu, the old rule's %zu", n, grain,
                      threads, share_of(n, c, threads), share_of(n, old, threads));
        if (grain == 1 && n <= 16 * threads)
          ck_assert_msg(share_of(n, c, threads) == (n + threads - 1) / threads,
                        "n %zu threads %zu: share %zu", n, threads, share_of(n, c, threads));
      }
  ck_assert_uint_eq(cpu_pool_chunk(10, 1, 2), 1);   /* old: 5 chunks of 2, shares 6 and 4 */
  ck_assert_uint_eq(cpu_pool_chunk(26, 1, 2), 1);   /* old: 7 of 4, 16 and 10 */
  ck_assert_uint_eq(cpu_pool_chunk(18, 2, 2), 3);   /* 6 of 3 */
  ck_assert_uint_eq(cpu_pool_chunk(22, 10, 2), 11); /* old: 10, 10 and 2 */
  ck_assert_uint_eq(cpu_pool_chunk(128, 1, 2), 16); /* already even: unchanged */
  ck_assert_uint_eq(cpu_pool_chunk(5, 1, 1), 5);
}
END_TEST

typedef struct racer {
  cpu_ctx *ctx;
  int ok;
} racer;

static void *race(void *arg) {
  racer *r = arg;
  for (int i = 0; i < 200; i++) {
    size_t n = 500 + (size_t)i;
    atomic_int *hits = calloc(n, sizeof *hits);
    visit v = {hits};
    cpu_parallel_for(r->ctx, n, 8, mark, &v);
    for (size_t k = 0; k < n; k++)
      if (atomic_load(&hits[k]) != 1) r->ok = 0;
    free(hits);
  }
  return NULL;
}

START_TEST(two_callers_share_a_pool) {
  cpu_pool *pool = cpu_pool_create(3);
  cpu_ctx ctx = {.pool = pool};
  racer a = {&ctx, 1}, b = {&ctx, 1};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, race, &a);
  pthread_create(&tb, NULL, race, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  ck_assert(a.ok && b.ok);
  cpu_pool_destroy(pool);
}
END_TEST

/* Who ran each item; an item waits (up to a second) until `wait_for` items have started, and
 * items below `slow_below` take 20 ms. */
typedef struct owners {
  pthread_t who[16];
  atomic_int started;
  int wait_for;
  size_t slow_below;
  atomic_flag other_seen; /* the first item another thread than the caller ran: */
  pthread_t first_other, caller;
  size_t first_other_item;
} owners;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void record(void *arg, size_t begin, size_t end) {
  owners *o = arg;
  for (size_t i = begin; i < end; i++) {
    o->who[i] = pthread_self();
    if (!pthread_equal(o->caller, pthread_self()) && !atomic_flag_test_and_set(&o->other_seen)) {
      o->first_other = pthread_self();
      o->first_other_item = i;
    }
    atomic_fetch_add(&o->started, 1);
    for (int k = 0; k < 1000 && atomic_load(&o->started) < o->wait_for; k++)
      sleep_ms(1);
    if (i < o->slow_below)
      sleep_ms(20);
  }
}

/* The caller starts on the first half of the items and the worker on the second (items wait
 * until both threads have started one, so that neither can finish its half and take from the
 * other first): consecutive kernels that cut their work alike then find what they read where
 * they wrote it. */
START_TEST(threads_start_on_their_own_ranges) {
  cpu_pool *pool = cpu_pool_create(2);
  cpu_ctx ctx = {.pool = pool};
  for (int rep = 0; rep < 5; rep++) {
    owners o = {.wait_for = 2, .caller = pthread_self(), .other_seen = ATOMIC_FLAG_INIT};
    cpu_parallel_for(&ctx, 8, 1, record, &o);
    ck_assert(pthread_equal(o.who[0], pthread_self()));
    ck_assert(!pthread_equal(o.who[4], pthread_self()));
    ck_assert(!pthread_equal(o.first_other, pthread_self()));
    ck_assert_uint_eq(o.first_other_item, 4);
  }
  cpu_pool_destroy(pool);
}
END_TEST

/* A thread that runs out of its own items takes the rest of another's: the caller's four items
 * are slow, the worker's fast, and the worker ends up running some of the caller's. */
START_TEST(an_idle_thread_takes_anothers_items) {
  cpu_pool *pool = cpu_pool_create(2);
  cpu_ctx ctx = {.pool = pool};
  owners o = {.slow_below = 4, .caller = pthread_self(), .other_seen = ATOMIC_FLAG_INIT};
  cpu_parallel_for(&ctx, 8, 1, record, &o);
  ck_assert_int_eq(atomic_load(&o.started), 8);
  int stolen = 0;
  for (size_t i = 1; i < 4; i++)
    stolen += !pthread_equal(o.who[i], pthread_self());
  ck_assert_int_ge(stolen, 1);
  cpu_pool_destroy(pool);
}
END_TEST

/* Two blocks out at once (the slot lends one, the other is allocated), given back in either
 * order: the slot keeps the larger, which the next take of that size gets without allocating. */
START_TEST(the_scratch_slot_keeps_the_larger_block) {
  for (int order = 0; order < 2; order++) {
    cpu_scratch *_Atomic slot = NULL;
    cpu_ctx ctx = {.scratch = &slot};
    bool fresh;
    char *big = cpu_scratch_take(&ctx, 1 << 20, &fresh);
    ck_assert(big && fresh);
    char *small = cpu_scratch_take(&ctx, 4096, &fresh);
    ck_assert(small && fresh && small != big);
    big[0] = 'b';
    cpu_scratch_give(&ctx, order ? big : small);
    cpu_scratch_give(&ctx, order ? small : big);
    char *again = cpu_scratch_take(&ctx, 1 << 20, &fresh);
    ck_assert_msg(again == big && !fresh && again[0] == 'b', "order %d: the large block lost",
                  order);
    /* A small take borrows the large block too. */
    cpu_scratch_give(&ctx, again);
    ck_assert(cpu_scratch_take(&ctx, 64, &fresh) == big && !fresh);
    cpu_scratch_give(&ctx, big);
    cpu_scratch_free(&slot);
    ck_assert(atomic_load(&slot) == NULL);
  }
}
END_TEST

typedef struct scratch_race {
  cpu_ctx *ctx;
  atomic_int bad;
} scratch_race;

/* Each item takes a block of a size of its own, writes all of it and gives it back. */
static void take_and_give(void *arg, size_t begin, size_t end) {
  scratch_race *r = arg;
  for (size_t i = begin; i < end; i++) {
    bool fresh;
    size_t bytes = 64 << (i % 7);
    unsigned char *p = cpu_scratch_take(r->ctx, bytes, &fresh);
    if (!p) {
      atomic_fetch_add(&r->bad, 1);
      continue;
    }
    for (size_t b = 0; b < bytes; b++)
      p[b] = (unsigned char)i;
    cpu_scratch_give(r->ctx, p);
  }
}

/* Threads taking and giving at once: no block is handed to two of them (ASan and TSan builds
 * would see it), and the slot ends up holding the largest size asked for. */
START_TEST(the_scratch_slot_under_many_threads) {
  cpu_pool *pool = cpu_pool_create(4);
  cpu_scratch *_Atomic slot = NULL;
  cpu_ctx ctx = {.pool = pool, .scratch = &slot};
  scratch_race r = {.ctx = &ctx};
  for (int rep = 0; rep < 50; rep++)
    cpu_parallel_for(&ctx, 700, 1, take_and_give, &r);
  ck_assert_int_eq(atomic_load(&r.bad), 0);
  bool fresh;
  void *p = cpu_scratch_take(&ctx, 64 << 6, &fresh);
  ck_assert(p && !fresh);
  cpu_scratch_give(&ctx, p);
  cpu_scratch_free(&slot);
  cpu_pool_destroy(pool);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threadpool");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, covers_every_index_once);
  tcase_add_test(tc, two_callers_share_a_pool);
  tcase_add_test(tc, chunks_share_evenly);
  tcase_add_test(tc, threads_start_on_their_own_ranges);
  tcase_add_test(tc, an_idle_thread_takes_anothers_items);
  tcase_add_test(tc, the_scratch_slot_keeps_the_larger_block);
  tcase_add_test(tc, the_scratch_slot_under_many_threads);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
