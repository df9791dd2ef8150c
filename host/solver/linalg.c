/* Small dense helpers for the n x n solvers: sorting, affine distances and a
 * symmetric eigensolver. Plain C, double, fixed operation order (see solver.h). */
#include "solver.h"

RAGG_HD int ragg_is_excluded_norm(double n2) {
  /* DESIGN §2: excluded when G_ii is NaN, Inf or above FLT_MAX. */
  return !(n2 <= 3.4028234663852886e38);
}

RAGG_HD static int dless(double a, double b) { /* NaN orders last */
  if (a != a) return 0;
  if (b != b) return 1;
  return a < b;
}

/* Heap sort of the n elements at positions 0..n-1: LESS(i, j) compares the
 * elements at positions i and j, SWAP(i, j) exchanges them. O(n log n), no
 * recursion, no allocation (runs on the device). */
#define SIFT_DOWN(root0, end, LESS, SWAP)                         \
  do {                                                            \
    int64_t root_ = (root0);                                      \
    for (;;) {                                                    \
      int64_t child_ = 2 * root_ + 1;                             \
      if (child_ >= (end)) break;                                 \
      if (child_ + 1 < (end) && LESS(child_, child_ + 1)) ++child_; \
      if (!LESS(root_, child_)) break;                            \
      SWAP(root_, child_);                                        \
      root_ = child_;                                             \
    }                                                             \
  } while (0)
#define SWAP_IN(arr, T, a, b) \
  do {                        \
    T t_ = (arr)[a];          \
    (arr)[a] = (arr)[b];      \
    (arr)[b] = t_;            \
  } while (0)
#define HEAP_SORT(n, LESS, SWAP)                                            \
  do {                                                                      \
    for (int64_t start_ = (n) / 2 - 1; start_ >= 0; --start_)               \
      SIFT_DOWN(start_, (n), LESS, SWAP);                                   \
    for (int64_t end_ = (n) - 1; end_ > 0; --end_) {                        \
      SWAP(0, end_);                                                        \
      SIFT_DOWN(0, end_, LESS, SWAP);                                       \
    }                                                                       \
  } while (0)

RAGG_HD void ragg_sort_doubles(double *v, int64_t n) {
#define VLESS(a, b) dless(v[a], v[b])
#define VSWAP(a, b) SWAP_IN(v, double, a, b)
  HEAP_SORT(n, VLESS, VSWAP);
#undef VLESS
#undef VSWAP
}

RAGG_HD static int pair_less(const double *key, int64_t a, int64_t b) {
  if (dless(key[a], key[b])) return 1;
  if (dless(key[b], key[a])) return 0;
  return a < b;
}

RAGG_HD void ragg_argsort_pairs(const double *key, int64_t *idx, int64_t n) {
#define ILESS(a, b) pair_less(key, idx[a], idx[b])
#define ISWAP(a, b) SWAP_IN(idx, int64_t, a, b)
  HEAP_SORT(n, ILESS, ISWAP);
#undef ILESS
#undef ISWAP
}

/* ||sum_j c_j x_j||^2 from squared distances and squared norms:
 *   sum_jl c_j c_l G_jl = sigma * sum_j c_j N_j - 1/2 c^T D c,  sigma = sum_j c_j,
 * which needs no norm at all when sigma = 0 (differences of affine
 * combinations), so distances measured directly keep their accuracy.
 * Zero coefficients are skipped: an excluded point (infinite D) reaches the
 * result only through a nonzero coefficient. */
RAGG_HD double ragg_affine_sqdist(const double *D, const double *N, int64_t ld, const double *c,
                                  int64_t np) {
  double sigma = 0.0, cn = 0.0, q = 0.0;
  for (int64_t j = 0; j < np; ++j) {
    if (c[j] == 0.0) continue;
    sigma += c[j];
    double row = 0.0;
    for (int64_t l = 0; l < np; ++l)
      if (c[l] != 0.0 && l != j) row += c[l] * D[j * ld + l];
    q += c[j] * row;
  }
  if (sigma != 0.0)
    for (int64_t j = 0; j < np; ++j)
      if (c[j] != 0.0) cn += c[j] * N[j];
  double r = (sigma != 0.0 ? sigma * cn : 0.0) - 0.5 * q;
  return r > 0.0 ? r : 0.0;
}

/* Largest eigenvalue (and, unless vec is 0, its unit eigenvector) of the
 * symmetric n x n matrix A (destroyed), by cyclic Jacobi rotations to
 * convergence: deterministic and exact to rounding, unlike a power step from
 * a random start. The eigenvalue does not depend on whether the vectors are
 * kept. work: n*n doubles. */
RAGG_HD double ragg_top_eigenvalue(double *A, int64_t n, double *vec, double *work) {
  double *V = work; /* the eigenvectors, kept only when vec asks for one */
  if (vec)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) V[i * n + j] = (i == j) ? 1.0 : 0.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      diag += A[i * n + i] * A[i * n + i];
      for (int64_t j = i + 1; j < n; ++j) off += A[i * n + j] * A[i * n + j];
    }
    if (off == 0.0 || off <= 1e-32 * diag) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        double apq = A[p * n + q];
        if (apq == 0.0) continue;
        double app = A[p * n + p], aqq = A[q * n + q];
        double theta = (aqq - app) / (2.0 * apq);
        double t = (theta >= 0.0 ? 1.0 : -1.0) /
                   ((theta >= 0.0 ? theta : -theta) + sqrt(theta * theta + 1.0));
        double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          double akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          double apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; vec && k < n; ++k) {
          double vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (A[i * n + i] > A[best * n + best]) best = i;
  if (vec)
    for (int64_t k = 0; k < n; ++k) vec[k] = V[k * n + best];
  return n > 0 ? A[best * n + best] : 0.0;
}
