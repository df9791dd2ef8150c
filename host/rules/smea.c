/* SMEA, smallest maximum eigenvalue averaging (Allouah et al., AISTATS 2023):
 * the subset S of n-f inputs whose covariance (1/|S|) sum (x_i - mu_S)(..)^T
 * has the smallest top eigenvalue (+Inf if S holds an excluded row),
 * averaged; ties to the lexicographically smallest subset. Every eigenvalue
 * is exact to rounding (ragg_top_eigenvalue on the n x n counterpart). */
#include "covariance.h"

RAGG_HD void ragg_solve_smea(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, ld = io->ld, k = n - p->f;
  int64_t *c = io->iscratch, *best = io->iscratch + ld;
  double *w = io->scratch, *Dw = w + ld, *B = Dw + ld, *M = B + ld * ld, *V = M + ld * ld;
  double best_lambda = 1.0 / 0.0;
  int have = 0;
  for (int64_t i = 0; i < k; ++i) {
    c[i] = best[i] = i;
    w[i] = 1.0 / (double)k;
  }
  do {
    double lambda = 0.0;
    for (int64_t i = 0; i < k; ++i)
      if (ragg_is_excluded_norm(io->N[c[i]])) lambda = 1.0 / 0.0;
    if (lambda == 0.0) {
      ragg_centered_gram(io->D, ld, c, k, w, B, M, Dw);
      lambda = ragg_top_eigenvalue(M, k, 0, V); /* the value alone */
    }
    if (!have || lambda < best_lambda) {
      best_lambda = lambda;
      have = 1;
      for (int64_t i = 0; i < k; ++i) best[i] = c[i];
    }
  } while (ragg_next_combination(c, k, n));
  for (int64_t i = 0; i < ld; ++i) io->beta[i] = 0.0;
  for (int64_t i = 0; i < k; ++i) io->beta[best[i]] = 1.0 / (double)k;
}
