// Fixtures for the n x n solver's tests: squared distances of random points
// computed in double on the host, as the Gram pass would hand them over, and
// the buffers of one host solve.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

extern "C" {
#include "solver/solver.h"
}

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

// The buffers of one host solve of `dist` and the io that points at them
// (poison: fill with NaN and -7 first, so that a read of what the solve did
// not write shows; otherwise zeros).
struct HostSolve {
  std::vector<double> alpha, scores, scratch, mix;
  std::vector<int64_t> iscratch, bul;
  std::vector<int32_t> sel;
  ragg_solve_io_t io;

  HostSolve(const Distances &dist, bool poison) {
    const int64_t n = dist.n, L = dist.L;
    const double fill = poison ? NAN : 0.0;
    alpha.assign((size_t)L, fill);
    scores.assign((size_t)n, fill);
    scratch.assign((size_t)ragg_solver_scratch_doubles(n), fill);
    mix.assign((size_t)(L * L), fill);
    iscratch.assign((size_t)ragg_solver_scratch_ints(n), poison ? -7 : 0);
    bul.assign((size_t)L, 0);
    sel.assign((size_t)n, poison ? -1 : 0);
    std::memset(&io, 0, sizeof(io));
    io.n = n;
    io.has_anchor = (int)(L - n);
    io.D = dist.D.data();
    io.N = dist.N.data();
    io.alpha = alpha.data();
    io.scores = scores.data();
    io.selected = sel.data();
    io.bulyan_rows = bul.data();
    io.mix = mix.data();
    io.scratch = scratch.data();
    io.iscratch = iscratch.data();
  }
  HostSolve(const HostSolve &) = delete; // io points into this object
  HostSolve &operator=(const HostSolve &) = delete;
};
