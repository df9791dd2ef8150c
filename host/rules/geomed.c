/* Geometric median: argmin_z sum_i ||x_i - z||, by smoothed Weiszfeld
 * (Weiszfeld 1937; the smoothing nu as in Pillutla, Kakade & Harchaoui,
 * "Robust Aggregation for Federated Learning", 2022).
 * Start at the medoid (lowest sum of distances to the other rows), then
 * alpha_i proportional to 1 / max(nu, ||x_i - z||) until the objective F
 * changes by at most tol * F, or max_iters. z = sum_j alpha_j x_j is kept as
 * weights, so ||x_i - z||^2 = (D alpha)_i - alpha^T D alpha / 2 (sum alpha = 1)
 * and an iteration costs O(n^2), whatever d is. Excluded rows weigh 0. */
#include "../solver/solver.h"

/* dist[i] = ||x_i - z|| for every row that is not excluded; returns F. */
static RAGG_HD double distances_to(const ragg_rule_io_t *io, const double *beta, double *dist,
                                   double *Db) {
  int64_t n = io->n, ld = io->ld;
  double bDb = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t j = 0; j < n; ++j)
      if (beta[j] != 0.0 && j != i) s += io->D[i * ld + j] * beta[j];
    Db[i] = s;
    if (beta[i] != 0.0) bDb += beta[i] * s;
  }
  double F = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (ragg_is_excluded_norm(io->N[i])) {
      dist[i] = 1.0 / 0.0;
      continue;
    }
    double q = Db[i] - 0.5 * bDb;
    dist[i] = sqrt(q > 0.0 ? q : 0.0);
    F += dist[i];
  }
  return F;
}

RAGG_HD void ragg_solve_geomed(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, ld = io->ld;
  double *dist = io->scratch, *Db = io->scratch + n, *beta = io->beta;
  int64_t medoid = -1;
  double best = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (ragg_is_excluded_norm(io->N[i])) continue;
    double s = 0.0;
    for (int64_t j = 0; j < n; ++j)
      if (j != i && !ragg_is_excluded_norm(io->N[j])) s += sqrt(io->D[i * ld + j]);
    if (medoid < 0 || s < best) {
      medoid = i;
      best = s;
    }
  }
  if (medoid < 0) medoid = 0;
  for (int64_t i = 0; i < ld; ++i) beta[i] = 0.0;
  beta[medoid] = 1.0;
  double F = distances_to(io, beta, dist, Db);
  for (int64_t it = 0; it < p->max_iters; ++it) {
    double wsum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      double w = 0.0;
      if (!ragg_is_excluded_norm(io->N[i])) w = 1.0 / (dist[i] > p->nu ? dist[i] : p->nu);
      beta[i] = w;
      wsum += w;
    }
    if (wsum == 0.0) break;
    for (int64_t i = 0; i < n; ++i) beta[i] /= wsum;
    double F2 = distances_to(io, beta, dist, Db);
    double change = F - F2;
    if (change < 0.0) change = -change;
    F = F2;
    if (change <= p->tol * F2) break;
  }
}
