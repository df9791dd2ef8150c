/* SMEA, smallest maximum eigenvalue averaging (Allouah et al., AISTATS 2023):
 * the subset S of n-f inputs whose covariance (1/|S|) sum (x_i - mu_S)(..)^T
 * has the smallest top eigenvalue (+Inf if S holds an excluded row),
 * averaged; ties to the lexicographically smallest subset. Every eigenvalue
 * is exact to rounding (ragg_top_eigenvalue on the n x n counterpart). */
#include "covariance.h"

/* A ragg_subset_scan_fn; scratch: 2 ld^2 + 7 ld doubles. */
static RAGG_HD double smea_scan(const ragg_rule_io_t *io, int64_t k, int64_t count, int64_t *c,
                                int64_t *best, double *scratch, int *first_nan) {
  const int64_t ld = io->ld;
  double *w = scratch, *Dw = w + ld, *B = Dw + ld, *M = B + ld * ld, *V = M + ld * ld;
  double best_lambda = 0.0 / 0.0;
  for (int64_t i = 0; i < k; ++i) w[i] = 1.0 / (double)k;
  for (int64_t r = 0; r < count; ++r) {
    if (r) ragg_next_combination(c, k, io->n);
    double lambda = 0.0;
    for (int64_t i = 0; i < k; ++i)
      if (ragg_is_excluded_norm(io->N[c[i]])) lambda = 1.0 / 0.0;
    if (lambda == 0.0) {
      ragg_centered_gram(io->D, ld, c, k, w, B, M, Dw);
      lambda = ragg_top_eigenvalue(M, k, 0, V); /* the value alone */
    }
    if (!r) *first_nan = lambda != lambda;
    if (lambda < best_lambda || (best_lambda != best_lambda && lambda == lambda)) {
      best_lambda = lambda;
      for (int64_t i = 0; i < k; ++i) best[i] = c[i];
    }
  }
  return best_lambda;
}

RAGG_HD void ragg_solve_smea(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, ld = io->ld, k = n - p->f;
  int64_t *c = io->iscratch, *best = io->iscratch + ld;
  int64_t total = ragg_binomial(n, p->f);
  if (!RAGG_SUBSETS_PARALLEL(io, k, total, (double)total * (double)(k * k * k), smea_scan,
                             2 * ld * ld + 7 * ld, best)) {
    int first_nan;
    for (int64_t i = 0; i < k; ++i) c[i] = i;
    smea_scan(io, k, total, c, best, io->scratch, &first_nan);
    if (first_nan)
      for (int64_t i = 0; i < k; ++i) best[i] = i;
  }
  for (int64_t i = 0; i < ld; ++i) io->beta[i] = 0.0;
  for (int64_t i = 0; i < k; ++i) io->beta[best[i]] = 1.0 / (double)k;
}
