/* Centered clipping (Karimireddy, He & Jaggi, ICML 2021, Alg. 2):
 *   v_{l+1} = v_l + (1/n) sum_i (x_i - v_l) min(1, tau / ||x_i - v_l||),
 * `iters` times from v_0 = cfg.cc_center (the anchor point; NULL: the origin).
 * v is kept as affine weights over the inputs and the anchor:
 *   v = sum_j beta_j x_j + beta_a v_0,  sum beta = 1. Excluded rows weigh 0. */
#include "../solver/solver.h"

RAGG_HD void ragg_solve_centered_clip(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, ld = io->ld;
  double *beta = io->beta, *Db = io->scratch, *c = io->scratch + ld;
  for (int64_t i = 0; i < ld; ++i) beta[i] = 0.0;
  beta[n] = 1.0; /* v_0 */
  for (int64_t it = 0; it < p->iters; ++it) {
    double bDb = 0.0;
    for (int64_t i = 0; i < ld; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < ld; ++j)
        if (beta[j] != 0.0 && j != i) s += io->D[i * ld + j] * beta[j];
      Db[i] = s;
      if (beta[i] != 0.0) bDb += beta[i] * s;
    }
    double csum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      double ci = 0.0;
      if (!ragg_is_excluded_norm(io->N[i])) {
        double q = Db[i] - 0.5 * bDb;
        double dist = sqrt(q > 0.0 ? q : 0.0);
        ci = dist > p->tau ? p->tau / dist : 1.0;
      }
      c[i] = ci;
      csum += ci;
    }
    double keep = 1.0 - csum / (double)n;
    for (int64_t i = 0; i < ld; ++i) beta[i] *= keep;
    for (int64_t i = 0; i < n; ++i) beta[i] += c[i] / (double)n;
  }
}
