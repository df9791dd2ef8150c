/* Geometric median: argmin_z sum_i ||x_i - z||, by smoothed Weiszfeld
 * (Weiszfeld 1937; the smoothing nu as in Pillutla, Kakade & Harchaoui,
 * "Robust Aggregation for Federated Learning", 2022).
 * Start at the medoid (lowest sum of distances to the other rows), then
 * alpha_i proportional to 1 / max(nu, ||x_i - z||) until the objective F
 * changes by at most tol * F, or max_iters. z = sum_j alpha_j x_j is kept as
 * weights, so ||x_i - z||^2 = (D alpha)_i - alpha^T D alpha / 2 (sum alpha = 1)
 * and an iteration costs O(n^2), whatever d is. Excluded rows weigh 0. */
#include "../solver/solver.h"

/* The pieces, in the order ragg_solve_geomed runs them; the rows of a row
 * piece are independent of one another (the CUDA backend runs them a thread
 * a row in one block, the rest in one thread between barriers). Scratch:
 * dist (n), then Db (n). */
static RAGG_HD double *geomed_dist(const ragg_rule_io_t *io) {
  return io->scratch;
}
static RAGG_HD double *geomed_db(const ragg_rule_io_t *io) {
  return io->scratch + io->n;
}

/* Db[i] = row i's sum of distances to the other rows that are not excluded. */
RAGG_HD void ragg_geomed_medoid_row(ragg_rule_io_t *io, int64_t i) {
  double s = 0.0;
  for (int64_t j = 0; j < io->n; ++j)
    if (j != i && !ragg_is_excluded_norm(io->N[j])) s += sqrt(io->D[i * io->ld + j]);
  geomed_db(io)[i] = s;
}

/* The medoid (the lowest sum; the first of equal ones) starts z. */
RAGG_HD void ragg_geomed_start(ragg_rule_io_t *io) {
  int64_t medoid = -1;
  double best = 0.0;
  for (int64_t i = 0; i < io->n; ++i) {
    if (ragg_is_excluded_norm(io->N[i])) continue;
    double s = geomed_db(io)[i];
    if (medoid < 0 || s < best) {
      medoid = i;
      best = s;
    }
  }
  if (medoid < 0) medoid = 0;
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  io->beta[medoid] = 1.0;
}

/* Db[i] = (D beta)_i. */
RAGG_HD void ragg_geomed_db_row(ragg_rule_io_t *io, int64_t i) {
  const double *beta = io->beta;
  double s = 0.0;
  for (int64_t j = 0; j < io->n; ++j)
    if (beta[j] != 0.0 && j != i) s += io->D[i * io->ld + j] * beta[j];
  geomed_db(io)[i] = s;
}

/* dist[i] = ||x_i - z|| for every row that is not excluded; returns F. */
RAGG_HD double ragg_geomed_objective(ragg_rule_io_t *io) {
  int64_t n = io->n;
  const double *beta = io->beta, *Db = geomed_db(io);
  double *dist = geomed_dist(io), bDb = 0.0;
  for (int64_t i = 0; i < n; ++i)
    if (beta[i] != 0.0) bDb += beta[i] * Db[i];
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

/* The next weights from the distances; 0 (and beta unnormalised) when every
 * weight is 0. */
RAGG_HD int ragg_geomed_reweight(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n;
  double *beta = io->beta, wsum = 0.0;
  const double *dist = geomed_dist(io);
  for (int64_t i = 0; i < n; ++i) {
    double w = 0.0;
    if (!ragg_is_excluded_norm(io->N[i])) w = 1.0 / (dist[i] > p->nu ? dist[i] : p->nu);
    beta[i] = w;
    wsum += w;
  }
  if (wsum == 0.0) return 0;
  for (int64_t i = 0; i < n; ++i) beta[i] /= wsum;
  return 1;
}

/* Whether the objective's change from F to F2 ends the iterations. */
RAGG_HD int ragg_geomed_converged(const ragg_solve_params_t *p, double F, double F2) {
  double change = F - F2;
  if (change < 0.0) change = -change;
  return change <= p->tol * F2;
}

RAGG_HD void ragg_solve_geomed(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  if (io->presolved) return; /* the CUDA backend's block ran the pieces */
  const int64_t n = io->n;
  RAGG_PARALLEL_ROWS
  for (int64_t i = 0; i < n; ++i) ragg_geomed_medoid_row(io, i);
  ragg_geomed_start(io);
  RAGG_PARALLEL_ROWS
  for (int64_t i = 0; i < n; ++i) ragg_geomed_db_row(io, i);
  double F = ragg_geomed_objective(io);
  for (int64_t it = 0; it < p->max_iters; ++it) {
    if (!ragg_geomed_reweight(p, io)) break;
    RAGG_PARALLEL_ROWS
    for (int64_t i = 0; i < n; ++i) ragg_geomed_db_row(io, i);
    double F2 = ragg_geomed_objective(io);
    int done = ragg_geomed_converged(p, F, F2);
    F = F2;
    if (done) break;
  }
}
