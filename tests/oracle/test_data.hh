// Test inputs: n rows of d values in a chosen dtype with a leading dimension,
// and the generators the suites draw them from.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "robustagg.h"

namespace ragg_test {

struct Inputs {
  ragg_dtype_t dtype = RAGG_F32;
  int64_t n = 0, d = 0, ld = 0;
  std::vector<unsigned char> buf;  // n * ld elements

  Inputs() = default;
  // The ld - d padding of each row is filled with NaN: a library that read it
  // would show it in its output.
  Inputs(ragg_dtype_t dtype, int64_t n, int64_t d, int64_t ld = 0);

  const void *data() const { return buf.data(); }
  const void *row(int64_t i) const;
  double get(int64_t i, int64_t k) const;
  void set(int64_t i, int64_t k, double v);  // rounds to the dtype
  std::vector<double> row_values(int64_t i) const;
  std::vector<std::vector<double>> rows() const;  // exact values, d per row
  std::vector<const void *> row_ptrs() const;
  // Row i of the result is row perm[i] of this.
  Inputs permuted(const std::vector<int64_t> &perm) const;
  void copy_row(int64_t dst, int64_t src);
};

// Independent N(0, scale^2) values.
void fill_gaussian(Inputs &x, std::mt19937_64 &rng, double scale = 1.0);

// Rows spread at distinct radii around a centre: row i = c + r_i g_i with the
// r_i a shuffled ladder 1, 1.15, 1.3, ..., so Krum-type rankings have gaps far
// above the rounding of a Gram matrix.
void fill_separated(Inputs &x, std::mt19937_64 &rng, double centre_scale = 0.5);

// Small integers in [-range, range]: many exact ties per coordinate.
void fill_ties(Inputs &x, std::mt19937_64 &rng, int range);

// Hostile row kinds; each is a whole row of the pattern.
enum HostileKind {
  HOSTILE_NAN_POS = 0,
  HOSTILE_NAN_NEG,
  HOSTILE_INF_POS,
  HOSTILE_INF_NEG,
  HOSTILE_MAX_POS,   // +largest finite of the dtype
  HOSTILE_MAX_NEG,
  HOSTILE_FLIP_1E6,  // -1e6 times an honest row
  HOSTILE_MIXED,     // NaN, -NaN, +Inf, -Inf, +max, -max cycling along k
  HOSTILE_KINDS
};
const char *hostile_name(int kind);
// Overwrites row `row`; HOSTILE_FLIP_1E6 uses row `honest` as its source.
void make_hostile(Inputs &x, int64_t row, int kind, int64_t honest);

std::vector<int64_t> random_permutation(int64_t n, std::mt19937_64 &rng);

}  // namespace ragg_test
