/* CAF, covariance-bound agnostic filter (Allouah, Guerraoui & Stephan 2025),
 * as DESIGN §2 fixes it: c_i = 1 (0 for excluded rows); while sum c > n-2f:
 * mu = sum c_i x_i / sum c; (lambda, v) = the top eigenpair of the weighted
 * covariance, computed exactly through its n x n counterpart; keep mu when
 * lambda is the smallest so far; tau_i = ((x_i - mu).v)^2; stop when
 * tau_max = 0; c_i <- c_i (1 - tau_i / tau_max). Each round zeroes the
 * argmax, so there are at most n rounds. Output: the kept mu. */
#include "covariance.h"

RAGG_HD void ragg_solve_caf(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, ld = io->ld;
  double *c = io->scratch, *w = c + ld, *Dw = w + ld, *u = Dw + ld, *tau = u + ld;
  double *B = tau + ld, *M = B + ld * ld, *V = M + ld * ld;
  int64_t *act = io->iscratch;
  double csum = 0.0, best_lambda = 1.0 / 0.0;
  int kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    c[i] = ragg_is_excluded_norm(io->N[i]) ? 0.0 : 1.0;
    csum += c[i];
  }
  for (int64_t i = 0; i < ld; ++i) io->beta[i] = 0.0;
  while (csum > (double)(n - 2 * p->f)) {
    int64_t a = 0;
    for (int64_t i = 0; i < n; ++i)
      if (c[i] > 0.0) {
        w[a] = c[i] / csum;
        act[a++] = i;
      }
    ragg_centered_gram(io->D, ld, act, a, w, B, M, Dw);
    double lambda = ragg_top_eigenvalue(M, a, u, V);
    if (!kept || lambda < best_lambda) {
      best_lambda = lambda;
      kept = 1;
      for (int64_t i = 0; i < ld; ++i) io->beta[i] = 0.0;
      for (int64_t i = 0; i < a; ++i) io->beta[act[i]] = w[i];
    }
    if (!(lambda > 0.0)) break;
    double tmax = 0.0;
    for (int64_t i = 0; i < a; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < a; ++j) s += B[i * a + j] * sqrt(w[j]) * u[j];
      tau[i] = s * s / lambda;
      if (tau[i] > tmax) tmax = tau[i];
    }
    if (tmax == 0.0) break;
    csum = 0.0;
    for (int64_t i = 0; i < a; ++i) {
      double ci = c[act[i]] * (1.0 - tau[i] / tmax);
      c[act[i]] = ci > 0.0 ? ci : 0.0;
    }
    for (int64_t i = 0; i < n; ++i) csum += c[i];
  }
  if (!kept && csum > 0.0)
    for (int64_t i = 0; i < n; ++i) io->beta[i] = c[i] / csum;
}
