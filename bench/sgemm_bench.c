/* The GEMM micro-benchmark: Tessera's single-precision GEMM (the one Conv, Gemm and MatMul run
 * on, devices/cpu/gemm.c) against OpenBLAS's cblas_sgemm on the same sizes and threads, and
 * both against the machine's peak.
 *
 *   sgemm_bench [--threads N] [--sizes MxKxN,...] [--rounds R] [--seconds S]
 *
 * Each round times Tessera and OpenBLAS one after the other (so both see the same noise from
 * the rest of the machine), each for at least S seconds of repeated products; the figure is
 * the best round's rate. Tessera runs twice: with B given plain (packed during the call, as for
 * a product of two run-time values) and with B packed ahead (as MatMul, Gemm and Conv have their
 * constant weights packed once, when the session is made). Two peaks are printed: the nominal one,
 * 2 FMA units x 8 floats x 2 flops per cycle at the clock /proc/cpuinfo reports, and the one
 * measured by a loop of independent AVX2 FMAs (what the cores sustain, boost clock included). Both
 * results are checked against each other. Built when OpenBLAS is found; not a dependency of the
 * library. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/nn_util.h"
#include "devices/cpu/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The clock /proc/cpuinfo reports for the first core, in GHz, or 0. */
static double cpuinfo_ghz(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return 0;
  char line[256];
  double mhz = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "cpu MHz", 7) == 0) {
      const char *c = strchr(line, ':');
      if (c)
        mhz = atof(c + 1);
      break;
    }
  fclose(f);
  return mhz / 1000.0;
}

#if defined(__x86_64__) || defined(__i386__)
/* GFLOP/s of one thread running twelve independent chains of 8-lane FMAs for `seconds`. */
__attribute__((target("avx2,fma"))) static double fma_peak(double seconds) {
  __m256 acc[12];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++)
    acc[i] = _mm256_set1_ps((float)i);
  long iters = 0;
  double t0 = now_s(), t;
  do {
    for (int r = 0; r < 100000; r++) {
#pragma GCC unroll 12
      for (int i = 0; i < 12; i++)
        acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    iters += 100000;
    t = now_s() - t0;
  } while (t < seconds);
  float sink = 0;
  for (int i = 0; i < 12; i++)
    sink += acc[i][0];
  if (sink == 12345.0f) /* keeps the loop; never true */
    puts("");
  return (double)iters * 12 * 8 * 2 / t / 1e9;
}
#endif

typedef struct size3 {
  size_t m, k, n;
} size3;

static void fill(float *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
  }
}

/* Rate of fn over at least `seconds`, in GFLOP/s. */
typedef void (*gemm_fn)(void *ctx, const size3 *s, const float *a, const float *b, float *c);

static double rate(gemm_fn fn, void *ctx, const size3 *s, const float *a, const float *b, float *c,
                   double seconds) {
  long runs = 0;
  double t0 = now_s(), t;
  do {
    fn(ctx, s, a, b, c);
    runs++;
    t = now_s() - t0;
  } while (t < seconds);
  return 2.0 * (double)s->m * (double)s->k * (double)s->n * (double)runs / t / 1e9;
}

static void run_tessera(void *ctx, const size3 *s, const float *a, const float *b, float *c) {
  cpu_sgemm(ctx, false, false, s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 0.0f, c, s->n);
}

/* b is B packed by cpu_sgemm_pack_b. */
static void run_tessera_packed(void *ctx, const size3 *s, const float *a, const float *b,
                               float *c) {
  cpu_sgemm_args g = {.m = s->m,
                      .n = s->n,
                      .k = s->k,
                      .alpha = 1.0f,
                      .a = a,
                      .lda = s->k,
                      .b_packed = b,
                      .c = c,
                      .ldc = s->n};
  if (cpu_sgemm_run(ctx, &g) != 0)
    abort(); /* scratch for A: the sizes here are far below what fails */
}

static void run_openblas(void *ctx, const size3 *s, const float *a, const float *b, float *c) {
  (void)ctx;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1.0f, a,
              (int)s->k, b, (int)s->n, 0.0f, c, (int)s->n);
}

static int usage(void) {
  fprintf(stderr, "usage: sgemm_bench [--threads N] [--sizes MxKxN,...] [--rounds R] "
                  "[--seconds S]\n");
  return 2;
}

int main(int argc, char **argv) {
  size_t threads = 1;
  int rounds = 5;
  double seconds = 0.3;
  const char *sizes_arg = "1024x1024x1024,256x1024x1024,64x768x3072";
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      return usage();
    if (strcmp(argv[i], "--threads") == 0)
      threads = (size_t)atoi(argv[++i]);
    else if (strcmp(argv[i], "--sizes") == 0)
      sizes_arg = argv[++i];
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0)
      seconds = atof(argv[++i]);
    else
      return usage();
  }
  if (threads < 1 || rounds < 1 || !(seconds > 0))
    return usage();
  size3 sizes[16];
  size_t n_sizes = 0;
  for (const char *p = sizes_arg; *p && n_sizes < 16;) {
    unsigned long m, k, n;
    int used = 0;
    if (sscanf(p, "%lux%lux%lu%n", &m, &k, &n, &used) != 3 || !m || !k || !n)
      return usage();
    sizes[n_sizes++] = (size3){m, k, n};
    p += used;
    if (*p == ',')
      p++;
    else if (*p)
      return usage();
  }

  openblas_set_num_threads((int)threads);
  cpu_pool *pool = cpu_pool_create(threads);
  /* A scratch slot as the plugin gives each executable: the packing scratch is kept from one
   * call to the next, as it is from one run of a model to the next. */
  cpu_scratch *_Atomic slot = NULL;
  cpu_ctx ctx = {.pool = pool, .isa = cpu_detect_isa(), .scratch = &slot};
  double ghz = cpuinfo_ghz();
  printf("threads %zu, Tessera kernels %s, OpenBLAS %s\n", threads,
         ctx.isa == CPU_ISA_AVX2_FMA ? "avx2-fma" : "generic", openblas_get_config());
  double nominal = ghz * 32.0 * (double)threads;
  if (ghz > 0)
    printf("nominal peak: %.2f GHz x 2 FMA units x 8 floats x 2 flops x %zu cores = %.1f "
           "GFLOP/s\n",
           ghz, threads, nominal);
  double measured = 0;
#if defined(__x86_64__) || defined(__i386__)
  if (ctx.isa == CPU_ISA_AVX2_FMA) {
    measured = fma_peak(0.5) * (double)threads;
    printf("measured peak: %.1f GFLOP/s (one thread's AVX2 FMA loop x %zu cores)\n", measured,
           threads);
  }
#endif
  printf("\n| M x K x N | threads | Tessera GFLOP/s | OpenBLAS GFLOP/s | Tessera/OpenBLAS | "
         "Tessera %% of measured peak | Tessera %% of nominal peak | Tessera, B packed ahead, "
         "GFLOP/s | B packed ahead / OpenBLAS |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  int status = 0;
  for (size_t si = 0; si < n_sizes; si++) {
    const size3 *s = &sizes[si];
    float *a = malloc(s->m * s->k * sizeof *a), *b = malloc(s->k * s->n * sizeof *b);
    float *c1 = malloc(s->m * s->n * sizeof *c1), *c2 = malloc(s->m * s->n * sizeof *c2);
    float *c3 = malloc(s->m * s->n * sizeof *c3);
    float *bp = nn_alloc_aligned(cpu_sgemm_packed_b_floats(s->k, s->n), sizeof *bp);
    if (!a || !b || !c1 || !c2 || !c3 || !bp) {
      fprintf(stderr, "sgemm_bench: out of memory for %zux%zux%zu\n", s->m, s->k, s->n);
      free(a), free(b), free(c1), free(c2), free(c3), free(bp);
      status = 1;
      continue;
    }
    fill(a, s->m * s->k, 1);
    fill(b, s->k * s->n, 2);
    cpu_sgemm_pack_b(false, b, s->n, s->k, s->n, bp);
    double best_t = 0, best_o = 0, best_p = 0;
    for (int r = 0; r < rounds; r++) {
      double t = rate(run_tessera, &ctx, s, a, b, c1, seconds);
      double o = rate(run_openblas, NULL, s, a, b, c2, seconds);
      double pk = rate(run_tessera_packed, &ctx, s, a, bp, c3, seconds);
      best_t = t > best_t ? t : best_t;
      best_o = o > best_o ? o : best_o;
      best_p = pk > best_p ? pk : best_p;
    }
    /* All must compute the same product: |a - b| within float32 rounding of a sum of k terms
     * of magnitude at most 0.25. */
    double worst = 0;
    for (size_t i = 0; i < s->m * s->n; i++)
      worst = fmax(worst,
                   fmax(fabs((double)c1[i] - (double)c2[i]), fabs((double)c3[i] - (double)c2[i])));
    double tol = 1e-6 * 0.25 * (double)s->k;
    if (!(worst <= tol)) {
      fprintf(stderr, "sgemm_bench: %zux%zux%zu: results differ by %g (tolerance %g)\n", s->m,
              s->k, s->n, worst, tol);
      status = 1;
    }
    printf("| %zu x %zu x %zu | %zu | %.1f | %.1f | %.2f | %.0f%% | %.0f%% | %.1f | %.2f |\n", s->m,
           s->k, s->n, threads, best_t, best_o, best_t / best_o,
           measured > 0 ? 100 * best_t / measured : 0, nominal > 0 ? 100 * best_t / nominal : 0,
           best_p, best_p / best_o);
    free(a), free(b), free(c1), free(c2), free(c3), free(bp);
  }
  cpu_scratch_free(&slot);
  cpu_pool_destroy(pool);
  return status;
}
