/* A small fork-join thread pool for CPU kernels. One pool serves one executable; when two runs
 * of the same session use it at once, the second runs its kernels on its own thread instead of
 * waiting (see cpu_parallel_for). */
#ifndef TSR_CPU_THREADPOOL_H
#define TSR_CPU_THREADPOOL_H

#include "devices/cpu/cpu.h"

/* Creates a pool that runs work on `threads` threads in all (the caller's included), so it
 * starts threads - 1 workers. Returns NULL when threads <= 1 or on failure (then work runs
 * on the caller's thread, which is always correct). */
cpu_pool *cpu_pool_create(size_t threads);
void cpu_pool_destroy(cpu_pool *pool);

/* The items of one chunk when cpu_parallel_for cuts n items (chunks of at least grain) among
 * threads that take a chunk at a time: a few chunks a thread, so that uneven work balances,
 * and of a size that shares the items evenly where one can (ten items on two threads in ten
 * chunks, not five of two that the threads take three to two). */
size_t cpu_pool_chunk(size_t n, size_t grain, size_t threads);

#endif
