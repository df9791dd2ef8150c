/* MoNNA (Farhadkhani et al., "Robust collaborative learning with linear
 * gradient overhead", ICML 2023): the average of the n-f nearest neighbours
 * of the trusted input x_t, x_t itself included at distance 0, ties to the
 * lower index. */
#include "../solver/solver.h"

RAGG_HD void ragg_solve_monna(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, t = p->trusted;
  double *key = io->scratch;
  int64_t *idx = io->iscratch;
  for (int64_t j = 0; j < n; ++j) {
    key[j] = j == t ? 0.0 : io->D[t * io->ld + j];
    idx[j] = j;
  }
  ragg_argsort_pairs(key, idx, n);
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  for (int64_t i = 0; i < n - p->f; ++i) io->beta[idx[i]] = 1.0 / (double)(n - p->f);
}
