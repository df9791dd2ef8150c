/* Coordinate-wise rules, applied to one coordinate's values sorted in
 * ascending key order (-Inf < finite < +Inf < NaN). Shared by every backend.
 *
 * median: the middle value; for an even count the mean of the two middle
 *   values (numpy's convention).
 * trimmed mean: drop the f smallest and f largest, average the rest (Yin et
 *   al., ICML 2018, "Byzantine-robust distributed learning", Def. 2).
 * MeaMed (Xie, Koyejo & Gupta 2018, "Generalized Byzantine-tolerant SGD",
 *   Def. 5): the average of the `keep` values closest to the median. Ties at
 *   the boundary distance share the last slots: k slots take k times the
 *   average of every tied value, so the result does not depend on the input
 *   order and is symmetric under x -> -x. Distances are |2x - 2m| in double
 *   (2m = the sum of the two middle values), a NaN distance at +Inf.
 *   Bulyan's second step is the same with keep = theta - 2f. */
#ifndef RAGG_RULES_COORDINATE_H
#define RAGG_RULES_COORDINATE_H

#include "../solver/solver.h"

static RAGG_HD inline double ragg_coord_median(const float *v, int64_t k) {
  if (k & 1) return (double)v[k / 2];
  return ((double)v[k / 2 - 1] + (double)v[k / 2]) * 0.5;
}

static RAGG_HD inline double ragg_coord_trimmed(const float *v, int64_t k, int64_t f) {
  double s = 0.0;
  for (int64_t i = f; i < k - f; ++i) s += (double)v[i];
  return s / (double)(k - 2 * f);
}

/* A NaN distance (a NaN value; any value once 2m is NaN; an infinite value
 * at an infinite 2m of its sign) is +Inf, as the definition has it. */
static RAGG_HD inline double ragg_coord_distance(float x, double m2) {
  double t = 2.0 * (double)x - m2;
  if (t != t) return 1.0 / 0.0;
  return t < 0.0 ? -t : t;
}

static RAGG_HD inline double ragg_coord_meamed(const float *v, int64_t k, int64_t keep) {
  double m2 = (k & 1) ? 2.0 * (double)v[k / 2] : (double)v[k / 2 - 1] + (double)v[k / 2];
  /* Distances fall then rise along the sorted values: merge outwards from the
   * split to find t, the keep-th smallest distance. */
  int64_t r = 0;
  while (r < k && !(2.0 * (double)v[r] - m2 >= 0.0) && v[r] == v[r]) ++r;
  int64_t l = r - 1;
  double t = 0.0;
  for (int64_t taken = 0; taken < keep; ++taken) {
    double dl = l >= 0 ? ragg_coord_distance(v[l], m2) : 1.0 / 0.0;
    double dr = r < k ? ragg_coord_distance(v[r], m2) : 1.0 / 0.0;
    if (l >= 0 && (r >= k || dl <= dr)) {
      t = dl;
      --l;
    } else {
      t = dr;
      ++r;
    }
  }
  double below = 0.0, tied = 0.0;
  int64_t nbelow = 0, ntied = 0;
  for (int64_t i = 0; i < k; ++i) {
    double di = ragg_coord_distance(v[i], m2);
    if (di < t) {
      below += (double)v[i];
      ++nbelow;
    } else if (di == t) {
      tied += (double)v[i];
      ++ntied;
    }
  }
  double s = below;
  if (ntied > 0) s += (double)(keep - nbelow) * (tied / (double)ntied);
  return s / (double)keep;
}

#endif
