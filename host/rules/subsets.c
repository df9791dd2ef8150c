/* Brute's and SMEA's subset search on the CPU backend's OpenMP threads. The
 * combinations are cut into ranges of consecutive lexicographic ranks (more
 * ranges than threads: a subset's cost varies, Brute's with its early exit),
 * each range scanned from its first combination, and the ranges' results
 * combined in rank order: the first range's first value NaN keeps combination
 * 0, as a single scan does; otherwise a later range's best replaces the one so
 * far only when strictly smaller (ties keep the lexicographically smaller
 * subset). The CUDA backend runs the same scan serially in its solve kernel. */
#include <omp.h>
#include <stdlib.h>

#include "../solver/solver.h"

/* operations below which one thread scans everything (a few hundred us) */
#define RAGG_SUBSETS_PARALLEL_WORK (1 << 20)
enum { RANGES_PER_THREAD = 8 };

int ragg_subsets_parallel(const ragg_rule_io_t *io, int64_t k, int64_t total, double work,
                          ragg_subset_scan_fn scan, int64_t scratch_doubles, int64_t *best) {
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads < 2 || total < 2 || work < RAGG_SUBSETS_PARALLEL_WORK) return 0;
  int64_t ranges = RANGES_PER_THREAD * (int64_t)threads;
  if (ranges > total) ranges = total;
  const int64_t each = total / ranges, extra = total % ranges; /* the first `extra` take one more */
  int64_t *combos = (int64_t *)malloc(sizeof(int64_t) * (size_t)(2 * k * ranges));
  double *value = (double *)malloc(sizeof(double) * (size_t)ranges);
  int *first_nan = (int *)malloc(sizeof(int) * (size_t)ranges);
  int failed = !combos || !value || !first_nan;
  if (!failed) {
#pragma omp parallel num_threads(threads)
    {
      double *scratch =
          scratch_doubles ? (double *)malloc(sizeof(double) * (size_t)scratch_doubles) : NULL;
      if (scratch_doubles && !scratch) {
#pragma omp atomic write
        failed = 1;
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t q = 0; q < ranges; ++q) {
        if (scratch_doubles && !scratch) continue;
        int64_t r0 = q * each + (q < extra ? q : extra), count = each + (q < extra);
        int64_t *c = combos + 2 * k * q;
        ragg_unrank_combination(r0, k, io->n, c);
        value[q] = scan(io, k, count, c, c + k, scratch, &first_nan[q]);
      }
      free(scratch);
    }
  }
  if (!failed) {
    int64_t pick = 0;
    for (int64_t q = 1; q < ranges && !first_nan[0]; ++q)
      if (value[q] < value[pick]) pick = q;
    for (int64_t i = 0; i < k; ++i) best[i] = first_nan[0] ? i : combos[2 * k * pick + k + i];
  }
  free(combos);
  free(value);
  free(first_nan);
  return !failed;
}
