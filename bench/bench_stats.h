/* What the benchmarks share: the median of k timings (sorts t in place). */
#ifndef RAGG_BENCH_STATS_H
#define RAGG_BENCH_STATS_H

static inline double median_of(double *t, int k) {
  for (int i = 1; i < k; ++i)
    for (int j = i; j > 0 && t[j - 1] > t[j]; --j) {
      double s = t[j];
      t[j] = t[j - 1];
      t[j - 1] = s;
    }
  return k & 1 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
}

#endif
