/* What two of this machine's CPUs share right now, for telling apart the spells of a shared
 * virtual machine (bench/spells.py):
 *
 *   vcpu_probe [CPU_A CPU_B]   (default: the first two CPUs this process may run on)
 *
 * prints one JSON line: "pingpong_ns", the time a cache line takes from one CPU to the other
 * (two threads, one pinned to each, hand a counter back and forth 100000 times), and
 * "fma_solo_gflops" / "fma_both_gflops", the multiply-add rate of one thread alone and the
 * lower of the two when both run at once (12 independent AVX2 chains each, 50 ms a run).
 * Two vCPUs on different cores of one die hand a line over in some 25-45 ns and keep their
 * full rate together; on different dies the hand-over takes 150-200 ns; on the two hardware
 * threads of one core the rate together halves. The FMA figures are 0 without AVX2/FMA. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PROBE_FMA 1
#endif

enum { ROUNDS = 100000 };

static _Alignas(64) atomic_long ball;
static _Alignas(64) atomic_int go;
static int cpu_a, cpu_b;
static volatile float sink;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *pong(void *arg) {
  (void)arg;
  pin(cpu_b);
  for (long i = 1; i < 2 * ROUNDS; i += 2) {
    while (atomic_load_explicit(&ball, memory_order_acquire) != i) {
    }
    atomic_store_explicit(&ball, i + 1, memory_order_release);
  }
  return NULL;
}

static double pingpong_ns(void) {
  pthread_t t;
  atomic_store(&ball, 0);
  if (pthread_create(&t, NULL, pong, NULL) != 0)
    return -1;
  pin(cpu_a);
  double t0 = now();
  for (long i = 0; i < 2 * ROUNDS; i += 2) {
    atomic_store_explicit(&ball, i + 1, memory_order_release);
    while (atomic_load_explicit(&ball, memory_order_acquire) != i + 2) {
    }
  }
  double t1 = now();
  pthread_join(t, NULL);
  return (t1 - t0) * 1e9 / (2.0 * ROUNDS); /* one way */
}

#ifdef PROBE_FMA
/* GFLOP/s of 12 independent multiply-add chains over `seconds`. */
__attribute__((target("avx2,fma"))) static double fma_rate(double seconds) {
  __m256 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(1.0f + (float)i * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
  long steps = 0;
  double t0 = now(), t;
  do {
    for (int k = 0; k < 1000; k++) {
#pragma GCC unroll 12
      for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    }
    steps += 1000;
    t = now();
  } while (t - t0 < seconds);
  __m256 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  sink = _mm256_cvtss_f32(s);
  return (double)steps * 12 * 16 / (t - t0) * 1e-9;
}

static double both_rate[2];

static void *fma_thread(void *arg) {
  int which = (int)(long)arg;
  pin(which ? cpu_b : cpu_a);
  atomic_fetch_add(&go, 1);
  while (atomic_load(&go) < 2) {
  }
  both_rate[which] = fma_rate(0.05);
  return NULL;
}
#endif

int main(int argc, char **argv) {
  cpu_set_t allowed;
  cpu_a = cpu_b = -1;
  if (argc == 3) {
    cpu_a = atoi(argv[1]);
    cpu_b = atoi(argv[2]);
  } else if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    for (int c = 0; c < CPU_SETSIZE && cpu_b < 0; c++)
      if (CPU_ISSET(c, &allowed))
        *(cpu_a < 0 ? &cpu_a : &cpu_b) = c;
  }
  if (cpu_a < 0 || cpu_b < 0 || cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE || cpu_a == cpu_b) {
    fprintf(stderr, "vcpu_probe: needs two CPUs (usage: vcpu_probe [CPU_A CPU_B])\n");
    return 2;
  }
  if (pin(cpu_b) != 0 || pin(cpu_a) != 0) {
    fprintf(stderr, "vcpu_probe: CPU %d or %d is not one this process may run on\n", cpu_a, cpu_b);
    return 2;
  }
  double pp = pingpong_ns();
  double solo = 0, both = 0;
#ifdef PROBE_FMA
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    pin(cpu_a);
    solo = fma_rate(0.05);
    pthread_t t[2];
    atomic_store(&go, 0);
    for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, fma_thread, (void *)i);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    both = both_rate[0] < both_rate[1] ? both_rate[0] : both_rate[1];
  }
#endif
  printf("{\"cpus\": [%d, %d], \"pingpong_ns\": %.1f, \"fma_solo_gflops\": %.1f, "
         "\"fma_both_gflops\": %.1f}\n",
         cpu_a, cpu_b, pp, solo, both);
  return 0;
}
