/* The CPU plugin's thread pool: every index visited exactly once, for many sizes, grains and
 * thread counts, including two callers racing for one pool. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

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

int main(void) {
  Suite *s = suite_create("threadpool");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, covers_every_index_once);
  tcase_add_test(tc, two_callers_share_a_pool);
  tcase_add_test(tc, chunks_share_evenly);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
