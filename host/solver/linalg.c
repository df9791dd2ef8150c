/* Small dense helpers for the n x n solvers: splitmix64, sorting, affine
 * distances and a symmetric eigensolver. Plain C, double, fixed operation order
 * (see solver.h). */
#include "solver.h"

RAGG_HD uint64_t ragg_splitmix64_next(uint64_t *state) {
  *state += 0x9E3779B97F4A7C15ull;
  uint64_t z = *state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

RAGG_HD int ragg_is_excluded_norm(double n2) {
  /* DESIGN §2: excluded when G_ii is NaN, Inf or above FLT_MAX. */
  return !(n2 <= 3.4028234663852886e38);
}

RAGG_HD static double dabs(double a) { return a < 0.0 ? -a : a; }

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

RAGG_HD void ragg_sort_pairs(double *key, double *val, int64_t n) {
#define KLESS(a, b) (dless(key[a], key[b]) || (!dless(key[b], key[a]) && val[a] < val[b]))
#define KSWAP(a, b)             \
  do {                          \
    SWAP_IN(key, double, a, b); \
    SWAP_IN(val, double, a, b); \
  } while (0)
  HEAP_SORT(n, KLESS, KSWAP);
#undef KLESS
#undef KSWAP
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

/* Householder reduction of the symmetric n x n A (row-major, full storage)
 * to a tridiagonal T = Q^T A Q, Q = H_0 H_1 ... H_{n-3}. On return A[i][i]
 * holds T's diagonal and A[i+1][i] its offdiagonal; reflector k,
 * H_k = I - beta_k v v^T acting on indices k+1..n-1 with v = (1, A[k+2][k],
 * ..., A[n-1][k]), keeps beta_k in A[k][k+1]. Each column is scaled by its
 * largest magnitude first, so no square overflows or underflows. About n^3
 * multiply-adds. p: n doubles. */
RAGG_HD static void tridiagonalize(double *A, int64_t n, double *p) {
  for (int64_t k = 0; k + 2 < n; ++k) {
    int64_t m = n - k - 1; /* the column below the diagonal: rows k+1..n-1 */
    double *S = A + (k + 1) * n + (k + 1);
    double scale = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      double a = dabs(A[(k + 1 + i) * n + k]);
      if (a > scale) scale = a;
    }
    double sigma = 0.0, x0 = scale > 0.0 ? A[(k + 1) * n + k] / scale : 0.0;
    for (int64_t i = 1; i < m && scale > 0.0; ++i) {
      double xi = A[(k + 1 + i) * n + k] / scale;
      sigma += xi * xi;
    }
    if (!(sigma > 0.0)) { /* nothing to annihilate */
      A[k * n + k + 1] = 0.0;
      continue;
    }
    double alpha = sqrt(x0 * x0 + sigma);
    if (x0 > 0.0) alpha = -alpha; /* v0 = x0 - alpha without cancellation */
    double v0 = x0 - alpha, beta = -v0 / alpha;
    for (int64_t i = 1; i < m; ++i) A[(k + 1 + i) * n + k] = A[(k + 1 + i) * n + k] / scale / v0;
    A[(k + 1) * n + k] = alpha * scale;
    A[k * n + k + 1] = beta;
    /* S <- H S H = S - v q^T - q v^T, q = p - (beta/2)(p.v) v, p = beta S v */
    double pv = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      double s = S[i * n];
      for (int64_t j = 1; j < m; ++j) s += S[i * n + j] * A[(k + 1 + j) * n + k];
      p[i] = beta * s;
      pv += p[i] * (i == 0 ? 1.0 : A[(k + 1 + i) * n + k]);
    }
    double K = 0.5 * beta * pv;
    for (int64_t i = 0; i < m; ++i) p[i] = p[i] - K * (i == 0 ? 1.0 : A[(k + 1 + i) * n + k]);
    for (int64_t i = 0; i < m; ++i) {
      double vi = i == 0 ? 1.0 : A[(k + 1 + i) * n + k], qi = p[i];
      double *Si = S + i * n;
      Si[0] = Si[0] - vi * p[0] - qi;
      for (int64_t j = 1; j < m; ++j) {
        double vj = A[(k + 1 + j) * n + k];
        Si[j] = Si[j] - vi * p[j] - qi * vj;
      }
    }
  }
}

/* How many eigenvalues of the tridiagonal T (diagonal A[i][i], offdiagonal
 * A[i+1][i]) lie below x: the negative pivots of T - xI = L D L^T (Sturm). A
 * pivot that vanishes is replaced by -pivmin, as LAPACK's bisection does. */
RAGG_HD static int64_t sturm_count(const double *A, int64_t n, double x, double pivmin) {
  int64_t count = 0;
  double q = 1.0;
  for (int64_t i = 0; i < n; ++i) {
    double e = i > 0 ? A[i * n + i - 1] : 0.0;
    q = A[i * n + i] - x - (i > 0 ? e * e / q : 0.0);
    if (dabs(q) < pivmin) q = -pivmin;
    if (q < 0.0) ++count;
  }
  return count;
}

/* x <- (T - lambda I)^-1 x by Gaussian elimination with partial pivoting on
 * the tridiagonal (pivots that vanish become tiny): one step of inverse
 * iteration. work: 5n doubles. */
RAGG_HD static void tridiagonal_solve(const double *A, int64_t n, double lambda, double tiny,
                                      double *x, double *work) {
  double *d = work, *du = d + n, *du2 = du + n, *dl = du2 + n, *swp = dl + n;
  for (int64_t i = 0; i < n; ++i) {
    d[i] = A[i * n + i] - lambda;
    du[i] = i + 1 < n ? A[(i + 1) * n + i] : 0.0;
    dl[i] = du[i];
    du2[i] = 0.0;
  }
  for (int64_t i = 0; i + 1 < n; ++i) {
    if (dabs(d[i]) >= dabs(dl[i])) { /* no interchange */
      swp[i] = 0.0;
      if (dabs(d[i]) < tiny) d[i] = tiny;
      dl[i] = dl[i] / d[i];
      d[i + 1] = d[i + 1] - dl[i] * du[i];
    } else { /* rows i and i+1 change places */
      double fact = d[i] / dl[i];
      swp[i] = 1.0;
      d[i] = dl[i];
      dl[i] = fact;
      double t = du[i];
      du[i] = d[i + 1];
      d[i + 1] = t - fact * d[i + 1];
      if (i + 2 < n) {
        du2[i] = du[i + 1];
        du[i + 1] = -fact * du[i + 1];
      }
    }
  }
  if (dabs(d[n - 1]) < tiny) d[n - 1] = tiny;
  for (int64_t i = 0; i + 1 < n; ++i) {
    if (swp[i] == 0.0) {
      x[i + 1] = x[i + 1] - dl[i] * x[i];
    } else {
      double t = x[i];
      x[i] = x[i + 1];
      x[i + 1] = t - dl[i] * x[i];
    }
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    double s = x[i];
    if (i + 1 < n) s = s - du[i] * x[i + 1];
    if (i + 2 < n) s = s - du2[i] * x[i + 2];
    x[i] = s / d[i];
  }
}

/* Largest eigenvalue (and, unless vec is 0, a unit eigenvector) of the
 * symmetric n x n matrix A (destroyed): Householder reduction to a
 * tridiagonal, bisection on its Sturm counts down to the last bits of the
 * value, and for the vector three steps of inverse iteration on the
 * tridiagonal from a fixed pseudo-random start, carried back through the
 * reflectors. Deterministic and exact to rounding (backward stable, like
 * LAPACK's dsytrd + dstebz + dstein), unlike a power step from a random
 * start; about n^3 multiply-adds. work: 5n doubles. */
RAGG_HD double ragg_top_eigenvalue(double *A, int64_t n, double *vec, double *work) {
  if (n <= 0) return 0.0;
  /* a NaN or infinite entry (no caller passes one: excluded rows never reach
   * A) gives NaN, which no comparison picks, rather than a made-up value */
  for (int64_t i = 0; i < n * n; ++i)
    if (!(A[i] - A[i] == 0.0)) {
      for (int64_t k = 0; vec && k < n; ++k) vec[k] = 0.0 / 0.0;
      return 0.0 / 0.0;
    }
  if (n == 1) {
    if (vec) vec[0] = 1.0;
    return A[0];
  }
  tridiagonalize(A, n, work);
  /* Gershgorin's bound above; the largest diagonal entry bounds it below. */
  double lo = A[0], hi = A[0], emax = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double el = i > 0 ? dabs(A[i * n + i - 1]) : 0.0,
           er = i + 1 < n ? dabs(A[(i + 1) * n + i]) : 0.0;
    if (er > emax) emax = er;
    double a = A[i * n + i];
    if (a > lo) lo = a;
    if (a + el + er > hi) hi = a + el + er;
  }
  double pivmin = 2.2250738585072014e-308 * (emax * emax > 1.0 ? emax * emax : 1.0);
  double tnorm = dabs(lo) > dabs(hi) ? dabs(lo) : dabs(hi);
  hi = hi + 2.220446049250313e-16 * tnorm + 2.0 * pivmin; /* every eigenvalue below hi */
  /* Invariant: the largest eigenvalue lies in [lo, hi). */
  for (int it = 0; it < 4096; ++it) {
    double mid = lo + 0.5 * (hi - lo);
    double mag = dabs(lo) > dabs(hi) ? dabs(lo) : dabs(hi);
    if (!(mid > lo && mid < hi) || hi - lo <= 2.220446049250313e-16 * mag) break;
    if (sturm_count(A, n, mid, pivmin) == n)
      hi = mid;
    else
      lo = mid;
  }
  double lambda = lo;
  if (vec) {
    /* Each solve grows the vector by up to 1 / (eps tnorm): it starts at
     * min(1, tnorm) in magnitude so that the growth cannot overflow. */
    double start = tnorm < 1.0 ? tnorm : 1.0;
    uint64_t state = 0x5eed5eed5eed5eedull;
    for (int64_t i = 0; i < n; ++i)
      vec[i] =
          ((double)(ragg_splitmix64_next(&state) >> 11) * 1.1102230246251565e-16 - 0.5) * start;
    double tiny = 2.220446049250313e-16 * tnorm;
    if (!(tiny > pivmin)) tiny = pivmin;
    for (int step = 0; step < 3; ++step) {
      tridiagonal_solve(A, n, lambda, tiny, vec, work);
      double big = 0.0;
      for (int64_t i = 0; i < n; ++i)
        if (dabs(vec[i]) > big) big = dabs(vec[i]);
      if (!(big > 0.0 && big < 1.0 / 0.0)) break; /* a zero or non-finite T: leave it */
      for (int64_t i = 0; i < n; ++i) vec[i] = vec[i] / big * start;
    }
    /* vec <- Q vec = H_0 (H_1 (... H_{n-3} vec)) */
    for (int64_t k = n - 3; k >= 0; --k) {
      double beta = A[k * n + k + 1];
      if (beta == 0.0) continue;
      double s = vec[k + 1];
      for (int64_t i = k + 2; i < n; ++i) s += A[i * n + k] * vec[i];
      s = beta * s;
      vec[k + 1] = vec[k + 1] - s;
      for (int64_t i = k + 2; i < n; ++i) vec[i] = vec[i] - s * A[i * n + k];
    }
    double norm = 0.0;
    for (int64_t i = 0; i < n; ++i) norm += vec[i] * vec[i];
    norm = sqrt(norm);
    if (norm > 0.0)
      for (int64_t i = 0; i < n; ++i) vec[i] = vec[i] / norm;
  }
  return lambda;
}
