/* Two builds of the library against each other, in one process: the same
 * inputs, the same threads, calls alternating between the builds in blocks,
 * so that a shared machine's changing load hits both sides of each ratio.
 * Prints each build's median time, the median over the rounds of the ratio
 * of a round's two block medians (A / B: above 1, B is faster), and whether
 * the two outputs agree byte for byte.
 *
 *   ab_libs LIB_A LIB_B [rows = trimmed_mean:64:8,median:64:0] [MiB per input = 16] [rounds = 15]
 *
 * A row is rule:n:f, with d = MiB 2^20 / (4 n) float32 values per input
 * (contiguous rows, uniform in [-0.5, 0.5) from a fixed seed). Each build is
 * loaded with dlopen and RTLD_LOCAL, so both can be the same soname. */
#define _GNU_SOURCE /* madvise's MADV_HUGEPAGE, posix_memalign, strtok_r, strdup */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_stats.h"
#include "robustagg.h"

typedef ragg_status_t (*aggregate_fn)(ragg_context_t *, const ragg_config_t *, ragg_dtype_t,
                                      const void *, int64_t, int64_t, int64_t, void *,
                                      ragg_report_t *);
typedef ragg_status_t (*create_fn)(ragg_context_t **, ragg_backend_t, int);
typedef void (*destroy_fn)(ragg_context_t *);
typedef void (*config_fn)(ragg_config_t *, ragg_rule_t, int64_t);
typedef ragg_status_t (*rule_fn)(const char *, ragg_rule_t *);
typedef const char *(*error_fn)(const ragg_context_t *);

typedef struct {
  aggregate_fn aggregate;
  create_fn create;
  destroy_fn destroy;
  config_fn config_init;
  rule_fn rule_from_name;
  error_fn last_error;
} build_t;

enum { BLOCK = 5, MAX_ROUNDS = 64 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int load(const char *path, build_t *b) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "ab_libs: %s\n", dlerror());
    return -1;
  }
  b->aggregate = (aggregate_fn)dlsym(h, "ragg_aggregate");
  b->create = (create_fn)dlsym(h, "ragg_context_create");
  b->destroy = (destroy_fn)dlsym(h, "ragg_context_destroy");
  b->config_init = (config_fn)dlsym(h, "ragg_config_init");
  b->rule_from_name = (rule_fn)dlsym(h, "ragg_rule_from_name");
  b->last_error = (error_fn)dlsym(h, "ragg_last_error");
  if (!b->aggregate || !b->create || !b->destroy || !b->config_init || !b->rule_from_name ||
      !b->last_error) {
    fprintf(stderr, "ab_libs: %s lacks the robustagg API\n", path);
    return -1;
  }
  return 0;
}

/* One row: returns 0, or -1 after printing why it could not run. */
static int run_row(build_t *b, const char *spec, double mib, int rounds) {
  char name[64];
  long long n = 0, f = 0;
  if (sscanf(spec, "%63[^:]:%lld:%lld", name, &n, &f) != 3 || n < 1 || f < 0) {
    fprintf(stderr, "ab_libs: row '%s' is not rule:n:f\n", spec);
    return -1;
  }
  ragg_rule_t rule;
  if (b[0].rule_from_name(name, &rule) != RAGG_SUCCESS) {
    fprintf(stderr, "ab_libs: unknown rule '%s'\n", name);
    return -1;
  }
  const int64_t d = (int64_t)(mib * 1048576.0 / 4.0 / (double)n);
  if (d < 1) {
    fprintf(stderr, "ab_libs: %.1f MiB holds no value for %lld inputs\n", mib, n);
    return -1;
  }
  const size_t huge = (size_t)1 << 21;
  const size_t bytes = ((size_t)n * (size_t)d * sizeof(float) + huge - 1) / huge * huge;
  float *x = NULL;
  if (posix_memalign((void **)&x, huge, bytes)) x = NULL;
  float *out[2] = {(float *)malloc(sizeof(float) * (size_t)d),
                   (float *)malloc(sizeof(float) * (size_t)d)};
  double *t[2] = {(double *)malloc(sizeof(double) * (size_t)rounds * BLOCK),
                  (double *)malloc(sizeof(double) * (size_t)rounds * BLOCK)};
  double ratio[MAX_ROUNDS], block[2][BLOCK];
  ragg_context_t *ctx[2] = {NULL, NULL};
  ragg_config_t cfg[2];
  int rc = -1;
  if (!x || !out[0] || !out[1] || !t[0] || !t[1]) {
    fprintf(stderr, "ab_libs: out of memory for row '%s'\n", spec);
    goto done;
  }
  madvise(x, bytes, MADV_HUGEPAGE); /* as NumPy and PyTorch ask for large arrays */
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < (size_t)n * (size_t)d; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)(s >> 40) * 0x1p-24f - 0.5f;
  }
  for (int l = 0; l < 2; ++l) {
    if (b[l].create(&ctx[l], RAGG_BACKEND_CPU, 0) != RAGG_SUCCESS) {
      fprintf(stderr, "ab_libs: no CPU context from build %c\n", 'A' + l);
      goto done;
    }
    b[l].config_init(&cfg[l], rule, f);
  }
  for (int r = 0; r < rounds; ++r)
    for (int l = 0; l < 2; ++l) {
      for (int k = 0; k < BLOCK; ++k) {
        double t0 = now();
        if (b[l].aggregate(ctx[l], &cfg[l], RAGG_F32, x, n, d, d, out[l], NULL) != RAGG_SUCCESS) {
          fprintf(stderr, "ab_libs: build %c, row '%s': %s\n", 'A' + l, spec,
                  b[l].last_error(ctx[l]));
          goto done;
        }
        block[l][k] = t[l][r * BLOCK + k] = now() - t0;
      }
      if (l == 1) ratio[r] = median_of(block[0], BLOCK) / median_of(block[1], BLOCK);
    }
  printf("%-14s %5lld %5lld %9lld %9.3f %9.3f %7.3f  %s\n", name, n, f, (long long)d,
         1e3 * median_of(t[0], rounds * BLOCK), 1e3 * median_of(t[1], rounds * BLOCK),
         median_of(ratio, rounds),
         memcmp(out[0], out[1], sizeof(float) * (size_t)d) ? "DIFFER" : "identical");
  rc = 0;
done:
  for (int l = 0; l < 2; ++l) {
    if (ctx[l]) b[l].destroy(ctx[l]);
    free(out[l]);
    free(t[l]);
  }
  free(x);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: ab_libs LIB_A LIB_B [rule:n:f,... = trimmed_mean:64:8,median:64:0] "
            "[MiB per input = 16] [rounds = 15]\n");
    return 2;
  }
  build_t b[2];
  if (load(argv[1], &b[0]) || load(argv[2], &b[1])) return 1;
  const char *rows = argc > 3 ? argv[3] : "trimmed_mean:64:8,median:64:0";
  const double mib = argc > 4 ? atof(argv[4]) : 16.0;
  int rounds = argc > 5 ? atoi(argv[5]) : 15;
  if (!(mib > 0.0) || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "ab_libs: MiB must be > 0 and rounds in 1..%d\n", MAX_ROUNDS);
    return 2;
  }
  printf("# A = %s\n# B = %s\n", argv[1], argv[2]);
  printf(
      "# medians of %d rounds x %d calls each; A/B: median over rounds of the ratio of the\n"
      "# rounds' block medians (> 1: B faster); outputs: A's and B's bytes compared\n",
      rounds, BLOCK);
  printf("%-14s %5s %5s %9s %9s %9s %7s  %s\n", "rule", "n", "f", "d", "A(ms)", "B(ms)", "A/B",
         "outputs");
  char *list = strdup(rows);
  int failed = !list;
  for (char *save = NULL, *tok = list ? strtok_r(list, ",", &save) : NULL; tok;
       tok = strtok_r(NULL, ",", &save))
    failed |= run_row(b, tok, mib, rounds) != 0;
  free(list);
  return failed;
}
