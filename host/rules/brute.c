/* Brute / MDA, minimum-diameter averaging (El Mhamdi, Guerraoui & Rouault,
 * ICML 2018, §2.2): the subset of n-f inputs with the smallest diameter
 * (largest pairwise squared distance), averaged; ties to the
 * lexicographically smallest subset. The caller has checked C(n, f) against
 * brute_limit. */
#include "../solver/solver.h"

RAGG_HD int64_t ragg_binomial(int64_t n, int64_t k) {
  if (k < 0 || k > n) return 0;
  if (k > n - k) k = n - k;
  int64_t r = 1;
  for (int64_t i = 1; i <= k; ++i) {
    /* r * (n - k + i) / i is exact at every step; saturate on overflow. */
    int64_t num = n - k + i;
    if (r > INT64_MAX / num) return INT64_MAX;
    r = r * num / i;
  }
  return r;
}

RAGG_HD int ragg_next_combination(int64_t *c, int64_t k, int64_t n) {
  int64_t i = k - 1;
  while (i >= 0 && c[i] == n - k + i) --i;
  if (i < 0) return 0;
  ++c[i];
  for (int64_t j = i + 1; j < k; ++j) c[j] = c[j - 1] + 1;
  return 1;
}

RAGG_HD void ragg_unrank_combination(int64_t r, int64_t k, int64_t n, int64_t *c) {
  int64_t x = 0;
  for (int64_t i = 0; i < k; ++i, ++x) {
    /* ragg_binomial(n - x - 1, k - i - 1) combinations put x at position i;
     * x stops at n - k + i, where a rank past the last would end */
    for (int64_t with = ragg_binomial(n - x - 1, k - i - 1); r >= with && x < n - k + i;
         ++x, with = ragg_binomial(n - x - 1, k - i - 1))
      r -= with;
    c[i] = x;
  }
}

/* The largest squared distance within subset c (+Inf with an excluded
 * input), or a value >= bound as soon as one is reached. */
static RAGG_HD double brute_diameter(const ragg_rule_io_t *io, const int64_t *c, int64_t k,
                                     double bound) {
  const int64_t ld = io->ld;
  double diam = 0.0;
  for (int64_t a = 0; a < k; ++a) {
    if (ragg_is_excluded_norm(io->N[c[a]])) diam = 1.0 / 0.0;
    for (int64_t b = a + 1; b < k; ++b) {
      double v = io->D[c[a] * ld + c[b]];
      if (v > diam) diam = v;
    }
    if (diam >= bound) break; /* ties keep the earlier subset */
  }
  return diam;
}

/* A ragg_subset_scan_fn; a diameter is never NaN. */
static RAGG_HD double brute_scan(const ragg_rule_io_t *io, int64_t k, int64_t count, int64_t *c,
                                 int64_t *best, double *scratch, int *first_nan) {
  (void)scratch;
  double best_diam = 1.0 / 0.0;
  for (int64_t r = 0; r < count; ++r) {
    if (r) ragg_next_combination(c, k, io->n);
    double diam = brute_diameter(io, c, k, r ? best_diam : 1.0 / 0.0);
    if (!r || diam < best_diam) {
      best_diam = diam;
      for (int64_t i = 0; i < k; ++i) best[i] = c[i];
    }
  }
  *first_nan = 0;
  return best_diam;
}

RAGG_HD void ragg_solve_brute(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, ld = io->ld, k = n - p->f;
  int64_t *c = io->iscratch, *best = io->iscratch + ld;
  int64_t total = ragg_binomial(n, p->f);
  if (!RAGG_SUBSETS_PARALLEL(io, k, total, (double)total * (double)(k * k), brute_scan, 0, best)) {
    int first_nan;
    for (int64_t i = 0; i < k; ++i) c[i] = i;
    brute_scan(io, k, total, c, best, 0, &first_nan);
  }
  for (int64_t i = 0; i < ld; ++i) io->beta[i] = 0.0;
  for (int64_t i = 0; i < k; ++i) io->beta[best[i]] = 1.0 / (double)k;
}
