/* The weighted covariance of a set of points, seen through its n x n
 * counterpart: for weights w (sum 1) and mu = sum w_j x_j,
 *   B_ij = (x_i - mu).(x_j - mu) = -1/2 (D_ij - (Dw)_i - (Dw)_j + w^T D w),
 *   M = W^1/2 B W^1/2,
 * and Sigma = sum w_i (x_i - mu)(x_i - mu)^T has the nonzero eigenvalues of M
 * (classical multidimensional scaling). Shared by CAF and SMEA. */
#include "covariance.h"

RAGG_HD void ragg_centered_gram(const double *D, int64_t ld, const int64_t *act, int64_t a,
                                const double *w, double *B, double *M, double *Dw) {
  double wDw = 0.0;
  for (int64_t i = 0; i < a; ++i) {
    double s = 0.0;
    for (int64_t j = 0; j < a; ++j)
      if (j != i) s += w[j] * D[act[i] * ld + act[j]];
    Dw[i] = s;
    wDw += w[i] * s;
  }
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < a; ++j) {
      double dij = i == j ? 0.0 : D[act[i] * ld + act[j]];
      double b = -0.5 * (dij - Dw[i] - Dw[j] + wDw);
      B[i * a + j] = b;
      M[i * a + j] = sqrt(w[i]) * b * sqrt(w[j]);
    }
}
