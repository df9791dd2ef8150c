// Distances for the n x n solver's tests: squared distances of random points
// computed in double on the host, as the Gram pass would hand them over.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

struct Distances {
  int64_t n, L;
  std::vector<double> D, N;
};

// n points (plus the anchor, point n, when anchor is 1) in 7 dimensions; row
// `excluded` (if >= 0) gets an infinite norm and infinite distances, as
// DESIGN §2's exclusion does.
inline Distances make_distances(int64_t n, int anchor, std::mt19937_64 &rng, int64_t excluded) {
  const int64_t L = n + anchor, dim = 7;
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> x((size_t)(L * dim));
  for (auto &v : x) v = g(rng);
  Distances r{n, L, std::vector<double>((size_t)(L * L)), std::vector<double>((size_t)L)};
  for (int64_t i = 0; i < L; ++i) {
    double s = 0.0;
    for (int64_t k = 0; k < dim; ++k) s += x[(size_t)(i * dim + k)] * x[(size_t)(i * dim + k)];
    r.N[(size_t)i] = i == excluded ? INFINITY : s;
  }
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < dim; ++k) {
        double t = x[(size_t)(i * dim + k)] - x[(size_t)(j * dim + k)];
        s += t * t;
      }
      if (i != j && (i == excluded || j == excluded)) s = INFINITY;
      r.D[(size_t)(i * L + j)] = s;
    }
  return r;
}
