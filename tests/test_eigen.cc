// The shared solver's top eigenpair (ragg_top_eigenvalue, used by CAF and
// SMEA): against the oracle's Jacobi diagonalisation on random symmetric
// matrices of many sizes, ranks and scales, and on the shapes that break
// careless eigensolvers (zero, diagonal, already tridiagonal, repeated top
// eigenvalue, columns with nothing to annihilate).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "oracle/oracle.hh"

extern "C" {
#include "solver/solver.h"
}

namespace {

using Mat = std::vector<std::vector<double>>;

struct Eig {
  double lambda;
  std::vector<double> vec;
};

// Runs the library's solver on a copy of a (with exactly the scratch its
// contract names, 5n doubles: the sanitizer build sees overruns), once with
// and once without the vector.
Eig library_eig(const Mat &a) {
  const int64_t n = (int64_t)a.size();
  std::vector<double> A((size_t)(n * n)), work((size_t)(5 * n)), vec((size_t)n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) A[(size_t)(i * n + j)] = a[(size_t)i][(size_t)j];
  std::vector<double> A2 = A;
  const double lambda = ragg_top_eigenvalue(A.data(), n, vec.data(), work.data());
  const double value_only = ragg_top_eigenvalue(A2.data(), n, nullptr, work.data());
  EXPECT_EQ(std::memcmp(&lambda, &value_only, sizeof lambda), 0)
      << "the eigenvalue depends on whether the vector is asked for";
  return {lambda, vec};
}

double frobenius(const Mat &a) {
  double s = 0;
  for (const auto &r : a)
    for (double v : r) s += v * v;
  return std::sqrt(s);
}

// |lambda - lambda_oracle| and the residual ||A v - lambda v|| both within a
// backward-stable solver's reach (a modest multiple of n eps ||A||), v of
// unit length, and v parallel to the oracle's vector where the top
// eigenvalue is separated from the next one.
void check_against_oracle(const Mat &a, const char *what) {
  SCOPED_TRACE(what);
  const size_t n = a.size();
  std::vector<double> values;
  Mat vectors;
  oracle::jacobi_eigen(a, values, vectors);
  const Eig e = library_eig(a);
  const double norm = frobenius(a), tol = 64.0 * (double)n * 2.220446049250313e-16 * norm;
  SCOPED_TRACE(::testing::Message() << "n = " << n << ", ||A||_F = " << norm);
  EXPECT_NEAR(e.lambda, values[0], tol);
  double len = 0, res = 0;
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < n; ++j) s += a[i][j] * e.vec[j];
    res += (s - e.lambda * e.vec[i]) * (s - e.lambda * e.vec[i]);
    len += e.vec[i] * e.vec[i];
  }
  EXPECT_NEAR(std::sqrt(len), 1.0, 1e-12);
  EXPECT_LE(std::sqrt(res), tol) << "residual of the eigenvector";
  const double gap = n > 1 ? values[0] - values[1] : norm;
  if (gap > 1e-6 * norm) {
    double dot = 0;
    for (size_t i = 0; i < n; ++i) dot += e.vec[i] * vectors[0][i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-6) << "gap " << gap;
  }
}

// Random symmetric matrices: B B^T of rank r (r = 0: indefinite, B + B^T),
// scaled by `scale`.
Mat random_symmetric(size_t n, size_t rank, double scale, std::mt19937_64 &rng) {
  std::normal_distribution<double> g(0.0, 1.0);
  Mat a(n, std::vector<double>(n, 0.0));
  if (rank == 0) {
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j <= i; ++j) a[i][j] = a[j][i] = g(rng) * scale;
    return a;
  }
  Mat b(n, std::vector<double>(rank));
  for (auto &r : b)
    for (double &v : r) v = g(rng);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t k = 0; k < rank; ++k) s += b[i][k] * b[j][k];
      a[i][j] = s * scale;
    }
  return a;
}

TEST(TopEigenpair, RandomMatricesAgainstJacobi) {
  std::mt19937_64 rng(7);
  for (size_t n : {1, 2, 3, 4, 5, 8, 17, 40, 97}) {
    for (size_t rank : {(size_t)0, (size_t)1, (size_t)3, n}) {
      if (rank > n) continue;
      for (double scale : {1.0, 1e-150, 1e150}) {
        const Mat a = random_symmetric(n, rank, scale, rng);
        check_against_oracle(a, rank == 0 ? "indefinite" : "positive semidefinite");
      }
    }
  }
}

TEST(TopEigenpair, LargeMatrix) {
  std::mt19937_64 rng(11);
  check_against_oracle(random_symmetric(200, 200, 1.0, rng), "n = 200, full rank");
  check_against_oracle(random_symmetric(200, 5, 1.0, rng), "n = 200, rank 5");
}

TEST(TopEigenpair, ZeroMatrix) {
  for (size_t n : {1, 2, 6}) {
    const Eig e = library_eig(Mat(n, std::vector<double>(n, 0.0)));
    EXPECT_EQ(e.lambda, 0.0);
    for (double v : e.vec) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(TopEigenpair, StructuredMatrices) {
  const size_t n = 9;
  Mat diag(n, std::vector<double>(n, 0.0)), tri = diag, twice = diag, arrow = diag;
  for (size_t i = 0; i < n; ++i) {
    diag[i][i] = (double)((i * 5) % n) - 3.0;  // largest in the middle
    tri[i][i] = 2.0;
    if (i + 1 < n) tri[i][i + 1] = tri[i + 1][i] = -1.0;  // eigenvalues 2 - 2 cos(k pi / 10)
    twice[i][i] = i < 2 ? 4.0 : 1.0;                      // 4 twice: any vector in the plane
    arrow[i][i] = 1.0;
    arrow[0][i] = arrow[i][0] = i == 0 ? 1.0 : 0.5;
  }
  check_against_oracle(diag, "diagonal");
  check_against_oracle(tri, "already tridiagonal");
  check_against_oracle(twice, "repeated top eigenvalue");
  check_against_oracle(arrow, "arrowhead");
  EXPECT_NEAR(library_eig(tri).lambda, 2.0 - 2.0 * std::cos(9.0 * M_PI / 10.0), 1e-14);
  EXPECT_EQ(library_eig(diag).lambda, 5.0);
}

TEST(TopEigenpair, NonFiniteEntriesGiveNaN) {
  for (double bad : {std::nan(""), (double)INFINITY, -(double)INFINITY}) {
    Mat a(4, std::vector<double>(4, 0.0));
    for (size_t i = 0; i < 4; ++i) a[i][i] = 1.0 + (double)i;
    a[0][2] = a[2][0] = bad;
    const Eig e = library_eig(a);
    EXPECT_TRUE(std::isnan(e.lambda)) << bad;
    for (double v : e.vec) EXPECT_TRUE(std::isnan(v)) << bad;
  }
}

TEST(TopEigenpair, SameBitsOnRepeatedCalls) {
  std::mt19937_64 rng(3);
  const Mat a = random_symmetric(33, 4, 1.0, rng);
  const Eig e1 = library_eig(a), e2 = library_eig(a);
  EXPECT_EQ(std::memcmp(&e1.lambda, &e2.lambda, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(e1.vec.data(), e2.vec.data(), sizeof(double) * e1.vec.size()), 0);
}

}  // namespace
